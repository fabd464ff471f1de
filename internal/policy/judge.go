package policy

// Judging a request against policies: the actions davkv knows, wildcard matching, and
// explicit Deny over Allow over nothing.

import "strings"

// Actions are the actions davkv checks, each a request of the S3 API or the native
// one (see the README's Access control for which requests need which).
var Actions = []string{
	"s3:GetObject", "s3:PutObject", "s3:DeleteObject",
	"s3:GetObjectAttributes", "s3:GetObjectTagging", "s3:PutObjectTagging", "s3:DeleteObjectTagging",
	"s3:AbortMultipartUpload", "s3:ListMultipartUploadParts",
	"s3:ListAllMyBuckets", "s3:CreateBucket", "s3:DeleteBucket",
	"s3:ListBucket", "s3:ListBucketVersions", "s3:ListBucketMultipartUploads",
	"s3:GetBucketLocation", "s3:GetBucketVersioning",
	"s3:GetLifecycleConfiguration", "s3:PutLifecycleConfiguration",
	"s3:GetBucketPolicy", "s3:PutBucketPolicy", "s3:DeleteBucketPolicy",
}

// EveryResource, as a Request's Resource, asks for an action on every resource at
// once (a listing of the whole index, say): only a statement whose resource is
// every one (* or arn:aws:s3:::*) allows it, and any Deny of the action denies it.
const EveryResource = ""

// Request is what is asked of the policies: Key (an access key ID, "" for an anonymous
// request) would do Action to Resource (an arn:aws:s3::: name, or EveryResource).
type Request struct {
	Key, Action, Resource string
}

// Decision is what a policy says of a request.
type Decision int

const (
	// Unsaid: no statement is about the request.
	Unsaid Decision = iota
	// Allowed by a statement, and denied by none.
	Allowed
	// Denied by a statement: no other can allow it.
	Denied
)

// Decide says what p says of req.
func (p Policy) Decide(req Request) Decision {
	d := Unsaid
	for _, st := range p.Statement {
		if !st.about(req) {
			continue
		}
		if st.Effect == Deny {
			return Denied
		}
		d = Allowed
	}
	return d
}

// Allows reports whether policies allow req: one allows it, and none denies it.
func Allows(req Request, policies ...Policy) bool {
	allowed := false
	for _, p := range policies {
		switch p.Decide(req) {
		case Denied:
			return false
		case Allowed:
			allowed = true
		}
	}
	return allowed
}

// about reports whether st's principal, actions and resources take in req.
func (st Statement) about(req Request) bool {
	if p := st.Principal; p != nil && !p.Anyone && (req.Key == "" || !contains(p.Keys, req.Key)) {
		return false
	}
	if !matchesAny(st.Action, req.Action, true) {
		return false
	}
	if req.Resource == EveryResource {
		if st.Effect == Deny {
			return true // a Deny of any resource is a Deny of some of every one
		}
		for _, r := range st.Resource {
			if strings.Trim(strings.TrimPrefix(r, ARNPrefix), "*") == "" {
				return true
			}
		}
		return false
	}
	return matchesAny(st.Resource, req.Resource, false)
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// matchesAny reports whether one of patterns matches s.
func matchesAny(patterns []string, s string, fold bool) bool {
	for _, p := range patterns {
		if match(p, s, fold) {
			return true
		}
	}
	return false
}

// match reports whether pattern, where * is any run of characters and ? any one,
// matches all of s; fold ignores ASCII case, as action names do.
func match(pattern, s string, fold bool) bool {
	if fold {
		pattern, s = strings.ToLower(pattern), strings.ToLower(s)
	}
	// The classic greedy match with one backtrack point: the last star seen.
	p, i, star, mark := 0, 0, -1, 0
	for i < len(s) {
		switch {
		case p < len(pattern) && (pattern[p] == '?' || pattern[p] == s[i]):
			p++
			i++
		case p < len(pattern) && pattern[p] == '*':
			star, mark = p, i
			p++
		case star >= 0:
			p = star + 1
			mark++
			i = mark
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}
