package auth

// The credentials of a native request: HTTP basic (curl -u ID:SECRET) or a bearer
// token (Authorization: Bearer ID:SECRET).

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// ErrBadCredentials says a request's credentials are malformed, name no key we know,
// or have the wrong secret: which, the client is not told.
var ErrBadCredentials = errors.New("invalid credentials")

// Credential is an access key ID and the secret offered with it.
type Credential struct {
	ID, Secret string
}

// FromRequest returns r's credential, ok false if it carries none (an anonymous
// request), or an error wrapping ErrBadCredentials if its Authorization header is
// malformed or of a scheme it does not know.
func FromRequest(r *http.Request) (c Credential, ok bool, err error) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return Credential{}, false, nil
	}
	scheme, rest, _ := strings.Cut(h, " ")
	var pair string
	switch strings.ToLower(scheme) {
	case "basic":
		b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(rest))
		if err != nil {
			return Credential{}, false, fmt.Errorf("%w: basic credentials are not base64", ErrBadCredentials)
		}
		pair = string(b)
	case "bearer":
		pair = strings.TrimSpace(rest)
	default:
		return Credential{}, false, fmt.Errorf("%w: authorization must be Basic or Bearer ID:SECRET (or an S3 signature)", ErrBadCredentials)
	}
	id, secret, found := strings.Cut(pair, ":")
	if !found || id == "" || secret == "" {
		return Credential{}, false, fmt.Errorf("%w: credentials must be ID:SECRET", ErrBadCredentials)
	}
	return Credential{ID: id, Secret: secret}, true, nil
}
