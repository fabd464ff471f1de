package s3proto

// Checking an S3 request's AWS Signature Version 4, in its Authorization header or
// presigned in its query, against the access keys davkv was given (-s3keys).

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Keys maps access key IDs to their secret keys.
type Keys map[string]string

// ParseKeys reads ACCESS:SECRET[,ACCESS:SECRET...], as -s3keys and DAVKV_S3_KEYS
// give them.
func ParseKeys(s string) (Keys, error) {
	keys := Keys{}
	for pair := range strings.SplitSeq(s, ",") {
		if pair = strings.TrimSpace(pair); pair == "" {
			continue
		}
		access, secret, ok := strings.Cut(pair, ":")
		if !ok || access == "" || secret == "" {
			return nil, errors.New("s3 keys must be ACCESS:SECRET pairs, separated by commas")
		}
		if _, dup := keys[access]; dup {
			return nil, fmt.Errorf("s3 access key %s is given twice", access)
		}
		keys[access] = secret
	}
	return keys, nil
}

// Secrets finds access keys' secrets.
type Secrets interface {
	// Lookup returns id's secret, found false if there is no such key, or an error if
	// it cannot be looked up now (the index is down, say).
	Lookup(id string) (secret string, found bool, err error)
}

// Lookup makes Keys Secrets.
func (k Keys) Lookup(id string) (string, bool, error) {
	secret, ok := k[id]
	return secret, ok, nil
}

// secretOf returns id's secret, or InvalidAccessKeyId, or the error of its lookup.
func secretOf(keys Secrets, id string) (string, error) {
	secret, found, err := keys.Lookup(id)
	if err != nil {
		return "", err
	}
	if !found {
		return "", Errorf(ErrInvalidAccessKeyID, "The AWS access key ID %s does not exist in our records.", id)
	}
	return secret, nil
}

const (
	sigV4Algorithm = "AWS4-HMAC-SHA256"
	// maxClockSkew is how far a signed request's time may be from the master's clock,
	// as S3 allows.
	maxClockSkew = 15 * time.Minute
	// maxPresignExpiry is the longest a presigned URL may be valid, as S3 allows.
	maxPresignExpiry = 7 * 24 * time.Hour
	// unsignedPayload is the payload hash of a request whose body is not signed.
	UnsignedPayload = "UNSIGNED-PAYLOAD"
	AmzDateFormat   = "20060102T150405Z"
)

// sigV4 is what a request's signature says: who signed what, when, for how long.
type sigV4 struct {
	access        string
	date          string // yyyymmdd, from the scope
	region        string
	amzDate       string // X-Amz-Date
	signedHeaders []string
	signature     string
	presigned     bool
	expires       time.Duration // presigned only
	// payload is what the signer said of the body: a hex SHA-256, UNSIGNED-PAYLOAD, or
	// one of the STREAMING-* forms.
	payload string
}

// Auth is the result of a checked signature: who signed, and how the body must be
// checked.
type Auth struct {
	Access  string
	Payload string
	// SigningKey and Scope check the signatures of an aws-chunked body's chunks.
	SigningKey []byte
	Scope      string
	Signature  string
	AmzDate    string
}

// VerifySigV4 checks r's signature with keys at now. It returns an Error that says
// what is wrong: AccessDenied for a request that is not signed or whose presigned URL
// expired, InvalidAccessKeyId, SignatureDoesNotMatch, RequestTimeTooSkewed, or
// AuthorizationHeaderMalformed; or the error of keys' Lookup.
func VerifySigV4(r *http.Request, keys Secrets, now time.Time) (Auth, error) {
	sig, err := parseSigV4(r)
	if err != nil {
		return Auth{}, err
	}
	secret, err := secretOf(keys, sig.access)
	if err != nil {
		return Auth{}, err
	}
	t, err := time.Parse(AmzDateFormat, sig.amzDate)
	if err != nil || !strings.HasPrefix(sig.amzDate, sig.date) {
		return Auth{}, Errorf(ErrAuthMalformed, "X-Amz-Date %q is not the credential's date %s in the form %s.", sig.amzDate, sig.date, AmzDateFormat)
	}
	if sig.presigned {
		if now.Before(t.Add(-maxClockSkew)) {
			return Auth{}, Errorf(ErrAccessDenied, "Request is not valid yet.")
		}
		if now.After(t.Add(sig.expires)) {
			return Auth{}, Errorf(ErrAccessDenied, "Request has expired.")
		}
	} else if d := now.Sub(t); d > maxClockSkew || d < -maxClockSkew {
		return Auth{}, Errorf(ErrTimeSkewed, "The difference between the request time and the server's time is too large.")
	}
	scope := sig.date + "/" + sig.region + "/s3/aws4_request"
	key := SigningKey(secret, sig.date, sig.region)
	want := hex.EncodeToString(hmacSHA256(key, stringToSign(sig.amzDate, scope, canonicalRequest(r, sig))))
	if !hmac.Equal([]byte(want), []byte(sig.signature)) {
		return Auth{}, Errorf(ErrSignatureMismatch, "The request signature we calculated does not match the signature you provided. Check your key and signing method.")
	}
	return Auth{Access: sig.access, Payload: sig.payload, SigningKey: key, Scope: scope, Signature: sig.signature, AmzDate: sig.amzDate}, nil
}

// parseSigV4 reads the signature's parts from the Authorization header or, for a
// presigned URL, from the query.
func parseSigV4(r *http.Request) (sigV4, error) {
	var sig sigV4
	var credential, signedHeaders string
	if auth := r.Header.Get("Authorization"); auth != "" {
		rest, ok := strings.CutPrefix(auth, sigV4Algorithm+" ")
		if !ok {
			return sig, Errorf(ErrAuthMalformed, "Only %s signatures are supported.", sigV4Algorithm)
		}
		for part := range strings.SplitSeq(rest, ",") {
			name, value, _ := strings.Cut(strings.TrimSpace(part), "=")
			switch name {
			case "Credential":
				credential = value
			case "SignedHeaders":
				signedHeaders = value
			case "Signature":
				sig.signature = value
			}
		}
		sig.amzDate = r.Header.Get("X-Amz-Date")
		sig.payload = r.Header.Get("X-Amz-Content-Sha256")
		if sig.payload == "" {
			return sig, Errorf(ErrInvalidRequest, "Missing required header for this request: x-amz-content-sha256.")
		}
	} else {
		q := r.URL.Query()
		if q.Get("X-Amz-Algorithm") != sigV4Algorithm {
			return sig, Errorf(ErrAccessDenied, "The request is not signed: %s in the Authorization header or the query is required.", sigV4Algorithm)
		}
		sig.presigned = true
		credential, signedHeaders, sig.signature = q.Get("X-Amz-Credential"), q.Get("X-Amz-SignedHeaders"), q.Get("X-Amz-Signature")
		sig.amzDate = q.Get("X-Amz-Date")
		secs, err := strconv.Atoi(q.Get("X-Amz-Expires"))
		switch {
		case err != nil:
			return sig, Errorf(ErrAuthMalformed, "X-Amz-Expires must be a number of seconds from 1 to %d.", int(maxPresignExpiry/time.Second))
		case secs < 1 || time.Duration(secs)*time.Second > maxPresignExpiry:
			// S3 refuses a link that never or no longer holds as it does an expired one.
			return sig, Errorf(ErrAccessDenied, "X-Amz-Expires must be from 1 to %d seconds.", int(maxPresignExpiry/time.Second))
		}
		sig.expires = time.Duration(secs) * time.Second
		sig.payload = UnsignedPayload
		if p := r.Header.Get("X-Amz-Content-Sha256"); p != "" {
			sig.payload = p
		}
	}
	// Credential is ACCESS/yyyymmdd/region/s3/aws4_request.
	parts := strings.Split(credential, "/")
	if len(parts) != 5 || parts[3] != "s3" || parts[4] != "aws4_request" || len(parts[1]) != 8 {
		return sig, Errorf(ErrAuthMalformed, "The credential %q is not ACCESS/yyyymmdd/REGION/s3/aws4_request.", credential)
	}
	sig.access, sig.date, sig.region = parts[0], parts[1], parts[2]
	if signedHeaders == "" || sig.signature == "" {
		return sig, Errorf(ErrAuthMalformed, "The signature lacks SignedHeaders or Signature.")
	}
	sig.signedHeaders = strings.Split(signedHeaders, ";")
	if !slices.Contains(sig.signedHeaders, "host") {
		return sig, Errorf(ErrAuthMalformed, "The host header must be signed.")
	}
	return sig, nil
}

// canonicalRequest is the request as SigV4 signs it: method, path as sent, query
// sorted and encoded, the signed headers, and the payload hash.
func canonicalRequest(r *http.Request, sig sigV4) string {
	var b strings.Builder
	b.WriteString(r.Method)
	b.WriteByte('\n')
	// S3 signs the path as the client encoded it, not encoded again.
	path, _, _ := strings.Cut(r.RequestURI, "?")
	if path == "" || path[0] != '/' {
		path = r.URL.EscapedPath()
	}
	b.WriteString(path)
	b.WriteByte('\n')
	b.WriteString(canonicalQuery(r.URL.RawQuery, sig.presigned))
	b.WriteByte('\n')
	for _, name := range sig.signedHeaders {
		b.WriteString(name)
		b.WriteByte(':')
		b.WriteString(canonicalHeader(r, name))
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	b.WriteString(strings.Join(sig.signedHeaders, ";"))
	b.WriteByte('\n')
	b.WriteString(sig.payload)
	return b.String()
}

// canonicalQuery sorts and encodes a query as SigV4 wants it, leaving out the
// signature itself from a presigned URL.
func canonicalQuery(raw string, presigned bool) string {
	q, _ := url.ParseQuery(raw) // a malformed pair is dropped: the signature then fails
	if presigned {
		q.Del("X-Amz-Signature")
	}
	names := make([]string, 0, len(q))
	for name := range q {
		names = append(names, name)
	}
	slices.Sort(names)
	var b strings.Builder
	for _, name := range names {
		values := slices.Clone(q[name])
		slices.Sort(values)
		for _, v := range values {
			if b.Len() > 0 {
				b.WriteByte('&')
			}
			b.WriteString(URIEncode(name, true))
			b.WriteByte('=')
			b.WriteString(URIEncode(v, true))
		}
	}
	return b.String()
}

// canonicalHeader is a signed header's value: every value of it, trimmed, inner
// runs of spaces made one, joined with commas. A value that is not UTF-8 is taken for
// Latin-1, as HTTP/1.1 has it: Python's clients (boto3) send a header's non-ASCII
// characters so, and sign them as UTF-8.
func canonicalHeader(r *http.Request, name string) string {
	var values []string
	switch name {
	case "host":
		values = []string{r.Host}
	case "content-length":
		values = r.Header.Values("Content-Length")
		if len(values) == 0 && r.ContentLength >= 0 {
			values = []string{strconv.FormatInt(r.ContentLength, 10)}
		}
	case "transfer-encoding":
		values = r.TransferEncoding
	default:
		values = r.Header.Values(name)
	}
	out := make([]string, len(values))
	for i, v := range values {
		if !utf8.ValidString(v) {
			latin1 := make([]rune, len(v))
			for j := range len(v) {
				latin1[j] = rune(v[j])
			}
			v = string(latin1)
		}
		out[i] = strings.Join(strings.Fields(v), " ")
	}
	return strings.Join(out, ",")
}

// URIEncode encodes s as SigV4 does: every byte but A-Z, a-z, 0-9, '-', '_', '.' and
// '~' as %XX, and '/' too if slash.
func URIEncode(s string, slash bool) string {
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~' || (c == '/' && !slash) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&15])
	}
	return b.String()
}

func stringToSign(amzDate, scope, canonical string) string {
	sum := sha256.Sum256([]byte(canonical))
	return sigV4Algorithm + "\n" + amzDate + "\n" + scope + "\n" + hex.EncodeToString(sum[:])
}

// SigningKey derives the key that signs requests of one day and region.
func SigningKey(secret, date, region string) []byte {
	k := hmacSHA256([]byte("AWS4"+secret), date)
	k = hmacSHA256(k, region)
	k = hmacSHA256(k, "s3")
	return hmacSHA256(k, "aws4_request")
}

func hmacSHA256(key []byte, data string) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(data))
	return h.Sum(nil)
}
