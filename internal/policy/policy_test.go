package policy

import (
	"errors"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name, doc string
		kind      Kind
		err       string // "" parses
	}{
		{"one statement as an object", `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"}}`, KeyPolicy, ""},
		{"arrays", `{"Version":"2012-10-17","Statement":[{"Sid":"r","Effect":"Deny","Action":["s3:Get*","s3:ListBucket"],"Resource":["*"]}]}`, KeyPolicy, ""},
		{"old version", `{"Version":"2008-10-17","Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}`, KeyPolicy, ""},
		{"bucket policy", `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"AWS":["*"]},"Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"}}`, BucketPolicy, ""},
		{"no version", `{"Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}`, KeyPolicy, "Version"},
		{"condition", `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"*","Resource":"*","Condition":{}}}`, KeyPolicy, "Condition"},
		{"bad effect", `{"Version":"2012-10-17","Statement":{"Effect":"allow","Action":"*","Resource":"*"}}`, KeyPolicy, "Effect"},
		{"unknown action", `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:GetObjectAcl","Resource":"*"}}`, KeyPolicy, "action"},
		{"other service", `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"iam:*","Resource":"*"}}`, KeyPolicy, "action"},
		{"bad resource", `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"*","Resource":"b/*"}}`, KeyPolicy, "resource"},
		{"principal in a key's policy", `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":"*","Action":"*","Resource":"*"}}`, KeyPolicy, "Principal"},
		{"no principal in a bucket's", `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"*","Resource":"arn:aws:s3:::b"}}`, BucketPolicy, "Principal"},
		{"another bucket", `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":"*","Action":"*","Resource":"arn:aws:s3:::c/*"}}`, BucketPolicy, "bucket b"},
		{"user principal", `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::1:root"},"Action":"*","Resource":"arn:aws:s3:::b"}}`, BucketPolicy, "principal"},
		{"no statement", `{"Version":"2012-10-17","Statement":[]}`, KeyPolicy, "no Statement"},
		{"two values", `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"*","Resource":"*"}} {}`, KeyPolicy, "more than one"},
		{"not JSON", `Allow everything`, KeyPolicy, "invalid"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Parse([]byte(tc.doc), tc.kind, "b")
			if tc.err == "" {
				if err != nil {
					t.Fatal(err)
				}
				again, err := Parse(p.JSON(), tc.kind, "b")
				if err != nil || string(again.JSON()) != string(p.JSON()) {
					t.Fatalf("canonical JSON %s parsed again: %s, %v", p.JSON(), again.JSON(), err)
				}
				return
			}
			if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("Parse = %v, want ErrMalformed saying %q", err, tc.err)
			}
		})
	}
}

// TestCanonicalJSON pins how a policy is stored and answered.
func TestCanonicalJSON(t *testing.T) {
	const want = `{"Version":"2012-10-17","Statement":[{"Sid":"PublicRead","Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"}]}`
	if got := string(PublicRead("b").JSON()); got != want {
		t.Fatalf("PublicRead(b) = %s, want %s", got, want)
	}
	for name, doc := range Canned {
		if _, err := Parse([]byte(doc), KeyPolicy, ""); err != nil {
			t.Errorf("canned policy %s: %v", name, err)
		}
	}
}

func TestMatch(t *testing.T) {
	for _, tc := range []struct {
		pattern, s string
		want       bool
	}{
		{"*", "", true}, {"*", "abc", true}, {"a*", "abc", true}, {"a*c", "abc", true}, {"a*c", "abcc", true},
		{"a?c", "abc", true}, {"a?c", "ac", false}, {"*b*", "abc", true}, {"abc", "abd", false},
		{"a*b*c", "axxbyyc", true}, {"a*b*c", "axxbyy", false}, {"", "", true}, {"", "a", false},
		{"arn:aws:s3:::b/*", "arn:aws:s3:::b", false}, {"arn:aws:s3:::b*", "arn:aws:s3:::b", true},
	} {
		if got := match(tc.pattern, tc.s, false); got != tc.want {
			t.Errorf("match(%q, %q) = %v, want %v", tc.pattern, tc.s, got, tc.want)
		}
	}
	if !match("S3:get*", "s3:GetObject", true) || match("S3:get*", "s3:GetObject", false) {
		t.Error("actions match regardless of case, resources do not")
	}
}

func TestAllows(t *testing.T) {
	parse := func(kind Kind, doc string) Policy {
		t.Helper()
		p, err := Parse([]byte(doc), kind, "b")
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	readB := parse(KeyPolicy, `{"Version":"2012-10-17","Statement":[
		{"Effect":"Allow","Action":["s3:GetObject","s3:ListBucket"],"Resource":["arn:aws:s3:::b","arn:aws:s3:::b/*"]},
		{"Effect":"Deny","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/secret/*"}]}`)
	all := parse(KeyPolicy, Canned["readwrite"])
	noC := parse(KeyPolicy, `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"},{"Effect":"Deny","Action":"s3:ListBucket","Resource":"arn:aws:s3:::c"}]}`)
	public := PublicRead("b")
	forK := parse(BucketPolicy, `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"AWS":"K"},"Action":"s3:PutObject","Resource":"arn:aws:s3:::b/up/*"}}`)
	for _, tc := range []struct {
		name     string
		req      Request
		policies []Policy
		want     bool
	}{
		{"allowed", Request{"K", "s3:GetObject", "arn:aws:s3:::b/x"}, []Policy{readB}, true},
		{"action case", Request{"K", "S3:GETOBJECT", "arn:aws:s3:::b/x"}, []Policy{readB}, true},
		{"other action", Request{"K", "s3:PutObject", "arn:aws:s3:::b/x"}, []Policy{readB}, false},
		{"other bucket", Request{"K", "s3:GetObject", "arn:aws:s3:::c/x"}, []Policy{readB}, false},
		{"bucket named like a prefix", Request{"K", "s3:GetObject", "arn:aws:s3:::bb/x"}, []Policy{readB}, false},
		{"deny wins", Request{"K", "s3:GetObject", "arn:aws:s3:::b/secret/x"}, []Policy{readB, all}, false},
		{"nothing allows", Request{"K", "s3:GetObject", "arn:aws:s3:::b/x"}, nil, false},
		{"list the bucket", Request{"K", "s3:ListBucket", "arn:aws:s3:::b"}, []Policy{readB}, true},
		{"list everything, allowed for one bucket", Request{"K", "s3:ListBucket", EveryResource}, []Policy{readB}, false},
		{"list everything", Request{"K", "s3:ListBucket", EveryResource}, []Policy{all}, true},
		{"list everything, one bucket denied", Request{"K", "s3:ListBucket", EveryResource}, []Policy{noC}, false},
		{"anonymous, public bucket", Request{"", "s3:GetObject", "arn:aws:s3:::b/x"}, []Policy{public}, true},
		{"anonymous write, public bucket", Request{"", "s3:PutObject", "arn:aws:s3:::b/x"}, []Policy{public}, false},
		{"a key named by the bucket", Request{"K", "s3:PutObject", "arn:aws:s3:::b/up/x"}, []Policy{forK}, true},
		{"another key", Request{"L", "s3:PutObject", "arn:aws:s3:::b/up/x"}, []Policy{forK}, false},
		{"anonymous, a key named", Request{"", "s3:PutObject", "arn:aws:s3:::b/up/x"}, []Policy{forK}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Allows(tc.req, tc.policies...); got != tc.want {
				t.Fatalf("Allows(%+v) = %v, want %v", tc.req, got, tc.want)
			}
		})
	}
}
