package s3proto

// Browser uploads (POST Object): an HTML form's fields, signed with SigV4 (or SigV2,
// which older upload libraries still sign with) over a base64 POST policy, and the
// policy's conditions on them, as S3 checks them.

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"slices"
	"strings"
	"time"
)

// ErrEntityTooLarge is S3's answer to a file longer than its policy's
// content-length-range (EntityTooSmall, to one shorter).
var ErrEntityTooLarge = &ErrorCode{"EntityTooLarge", 400}

// PostForm is what a POST Object form carries before its file: its fields by lower-case
// name, as the browser sent them.
type PostForm map[string]string

// Policy is a POST policy: when it expires and what it requires of a form.
type Policy struct {
	Expiration time.Time
	Conditions []Condition
	// MinLength and MaxLength are the content-length-range the file must be within;
	// MaxLength is -1 without one.
	MinLength, MaxLength int64
}

// Condition is one condition of a policy: a field (lower case, without $) must equal
// Value, or with Prefix start with it.
type Condition struct {
	Field, Value string
	Prefix       bool
}

// VerifyPost checks the SigV4 signature of form (x-amz-algorithm, -credential, -date,
// -signature over its policy), or its SigV2 one (AWSAccessKeyId, signature), with keys
// at now, and returns who signed and its policy, parsed. It answers AccessDenied for a
// form that is not signed, or whose policy expired; InvalidAccessKeyId;
// SignatureDoesNotMatch; and InvalidArgument for a policy that is not one, or a form
// that names its signer but lacks its policy or signature, as S3 does.
func VerifyPost(form PostForm, keys Secrets, now time.Time) (string, Policy, error) {
	if form["x-amz-algorithm"] == "" && form["awsaccesskeyid"] != "" {
		return verifyPostV2(form, keys, now)
	}
	if form["x-amz-algorithm"] != "" && (form["policy"] == "" || form["x-amz-signature"] == "") {
		return "", Policy{}, Errorf(ErrInvalidArgument, "Bucket POST must contain the fields policy and x-amz-signature.")
	}
	if form["x-amz-algorithm"] != sigV4Algorithm || form["policy"] == "" || form["x-amz-signature"] == "" {
		return "", Policy{}, Errorf(ErrAccessDenied, "A browser upload must be signed: policy, x-amz-algorithm %s, x-amz-credential, x-amz-date and x-amz-signature.", sigV4Algorithm)
	}
	parts := strings.Split(form["x-amz-credential"], "/")
	if len(parts) != 5 || parts[3] != "s3" || parts[4] != "aws4_request" || len(parts[1]) != 8 {
		return "", Policy{}, Errorf(ErrAuthMalformed, "The credential %q is not ACCESS/yyyymmdd/REGION/s3/aws4_request.", form["x-amz-credential"])
	}
	secret, err := secretOf(keys, parts[0])
	if err != nil {
		return "", Policy{}, err
	}
	if !strings.HasPrefix(form["x-amz-date"], parts[1]) {
		return "", Policy{}, Errorf(ErrAuthMalformed, "x-amz-date %q is not of the credential's date %s.", form["x-amz-date"], parts[1])
	}
	want := hex.EncodeToString(hmacSHA256(SigningKey(secret, parts[1], parts[2]), form["policy"]))
	return signedPolicy(parts[0], form["policy"], want, form["x-amz-signature"], now)
}

// verifyPostV2 checks form's SigV2 signature: the base64 HMAC-SHA1 of its policy.
func verifyPostV2(form PostForm, keys Secrets, now time.Time) (string, Policy, error) {
	access := form["awsaccesskeyid"]
	if form["policy"] == "" || form["signature"] == "" {
		return "", Policy{}, Errorf(ErrInvalidArgument, "Bucket POST must contain the fields policy and signature.")
	}
	secret, err := secretOf(keys, access)
	if err != nil {
		return "", Policy{}, err
	}
	h := hmac.New(sha1.New, []byte(secret))
	h.Write([]byte(form["policy"]))
	return signedPolicy(access, form["policy"], base64.StdEncoding.EncodeToString(h.Sum(nil)), form["signature"], now)
}

// signedPolicy returns access and policy, parsed, if the signature given is the one
// wanted and the policy has not expired at now.
func signedPolicy(access, policy, want, given string, now time.Time) (string, Policy, error) {
	if !hmac.Equal([]byte(want), []byte(given)) {
		return "", Policy{}, Errorf(ErrSignatureMismatch, "The request signature we calculated does not match the signature you provided. Check your key and signing method.")
	}
	p, err := ParsePolicy(policy)
	if err != nil {
		return "", Policy{}, err
	}
	if !now.Before(p.Expiration) {
		return "", Policy{}, Errorf(ErrAccessDenied, "Invalid according to Policy: Policy expired.")
	}
	return access, p, nil
}

// ParsePolicy reads a base64 POST policy: {"expiration": ..., "conditions": [...]},
// each condition {"field": "value"}, ["eq", "$field", "value"],
// ["starts-with", "$field", "prefix"] or ["content-length-range", min, max].
func ParsePolicy(b64 string) (Policy, error) {
	bad := func(format string, args ...any) (Policy, error) {
		return Policy{}, Errorf(ErrInvalidArgument, "Invalid Policy: "+format, args...)
	}
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return bad("not base64.")
	}
	// Its names are as S3 spells them: encoding/json would take any case.
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(raw, &doc); err != nil {
		return bad("not JSON: %v.", err)
	}
	var expiration string
	var conditions []json.RawMessage
	if json.Unmarshal(doc["expiration"], &expiration) != nil || json.Unmarshal(doc["conditions"], &conditions) != nil || conditions == nil {
		return bad("a policy is {\"expiration\": TIME, \"conditions\": [...]}.")
	}
	p := Policy{MaxLength: -1}
	if p.Expiration, err = time.Parse(time.RFC3339, expiration); err != nil {
		return bad("expiration %q is not an ISO 8601 time.", expiration)
	}
	for _, c := range conditions {
		var exact map[string]string
		if json.Unmarshal(c, &exact) == nil {
			if len(exact) != 1 {
				return bad("a condition names one field.")
			}
			for field, value := range exact {
				p.Conditions = append(p.Conditions, Condition{Field: strings.ToLower(field), Value: value})
			}
			continue
		}
		var list []json.RawMessage
		if json.Unmarshal(c, &list) != nil || len(list) != 3 {
			return bad("a condition is an object or a list of three.")
		}
		var op string
		if json.Unmarshal(list[0], &op) != nil {
			return bad("a condition's operation is a string.")
		}
		switch op = strings.ToLower(op); op {
		case "content-length-range":
			var lo, hi int64
			if json.Unmarshal(list[1], &lo) != nil || json.Unmarshal(list[2], &hi) != nil || lo < 0 || hi < lo {
				return bad("content-length-range takes two lengths, the least first.")
			}
			p.MinLength, p.MaxLength = lo, hi
		case "eq", "starts-with":
			var field, value string
			if json.Unmarshal(list[1], &field) != nil || json.Unmarshal(list[2], &value) != nil || !strings.HasPrefix(field, "$") {
				return bad("%s takes a $field and a string.", op)
			}
			p.Conditions = append(p.Conditions, Condition{Field: strings.ToLower(field[1:]), Value: value, Prefix: op == "starts-with"})
		default:
			return bad("unknown operation %q.", op)
		}
	}
	return p, nil
}

// postSignatureFields are the fields a policy need not name: the signature and the
// policy themselves (SigV4's or SigV2's), and the file.
var postSignatureFields = []string{"policy", "x-amz-signature", "awsaccesskeyid", "signature", "file"}

// Check checks form, for bucket, against p: every condition holds, and every field
// of the form is named by a condition (but the signature's, x-ignore-*, and the
// checksums of x-amz-checksum-*, which can only refuse a file), as S3 requires. A key
// with ${filename} holds if it does as given or with filename in its place. It answers
// AccessDenied, as S3 does.
func (p Policy) Check(form PostForm, bucket, filename string) error {
	failed := func(format string, args ...any) error {
		return Errorf(ErrAccessDenied, "Invalid according to Policy: "+format, args...)
	}
	named := map[string]bool{}
	for _, c := range p.Conditions {
		named[c.Field] = true
		got, ok := form[c.Field]
		if c.Field == "bucket" {
			got, ok = bucket, true
		}
		holds := func(got string) bool {
			return c.Prefix && (ok || c.Value == "") && strings.HasPrefix(got, c.Value) || !c.Prefix && ok && got == c.Value
		}
		switch {
		case holds(got):
		case c.Field == "key" && holds(strings.ReplaceAll(got, "${filename}", filename)):
		default:
			return failed("Policy Condition failed: [%q, \"$%s\", %q].", map[bool]string{true: "starts-with", false: "eq"}[c.Prefix], c.Field, c.Value)
		}
	}
	for field := range form {
		if !named[field] && !strings.HasPrefix(field, "x-ignore-") && !strings.HasPrefix(field, "x-amz-checksum-") && !slices.Contains(postSignatureFields, field) {
			return failed("Extra input fields: %s.", field)
		}
	}
	return nil
}

// LengthRange is a reader's check of a file against a content-length-range: it counts
// what it reads and fails, instead of ending, outside [Min, Max].
type LengthRange struct {
	Min, Max int64 // Max -1: none
	n        int64
}

// Count adds n bytes read; err is the reader's. It returns the error the read should
// return: EntityTooLarge past Max, EntityTooSmall at the end below Min.
func (l *LengthRange) Count(n int, err error) error {
	l.n += int64(n)
	if l.Max >= 0 && l.n > l.Max {
		return Errorf(ErrEntityTooLarge, "Your proposed upload exceeds the maximum allowed size of %d bytes.", l.Max)
	}
	if err != nil && l.n < l.Min {
		return Errorf(ErrEntityTooSmall, "Your proposed upload is smaller than the minimum allowed size of %d bytes.", l.Min)
	}
	return err
}
