package lifecycle

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"testing"
	"time"

	"davkv/internal/index"
	"davkv/internal/s3proto"
)

func TestParse(t *testing.T) {
	rule := func(body string) string {
		return "<LifecycleConfiguration><Rule>" + body + "</Rule></LifecycleConfiguration>"
	}
	tests := []struct {
		name, body string
		want       string // the rules, or an error code
	}{
		{"days under a prefix", rule(`<ID>tmp</ID><Filter><Prefix>tmp/</Prefix></Filter><Status>Enabled</Status><Expiration><Days>7</Days></Expiration>`),
			"[{tmp true tmp/ [] 0 0 7 0 0 false}]"},
		{"old prefix", rule(`<ID>a</ID><Prefix>x/</Prefix><Status>Disabled</Status><Expiration><Days>1</Days></Expiration>`), "[{a false x/ [] 0 0 1 0 0 true}]"},
		{"date", rule(`<ID>d</ID><Filter></Filter><Status>Enabled</Status><Expiration><Date>2027-01-01T00:00:00Z</Date></Expiration>`),
			fmt.Sprintf("[{d true  [] 0 0 0 %d 0 false}]", time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())},
		{"and", rule(`<ID>and</ID><Filter><And><Prefix>p/</Prefix><Tag><Key>k</Key><Value>v</Value></Tag><ObjectSizeGreaterThan>10</ObjectSizeGreaterThan><ObjectSizeLessThan>100</ObjectSizeLessThan></And></Filter><Status>Enabled</Status><Expiration><Days>2</Days></Expiration>`),
			"[{and true p/ [{k v}] 10 100 2 0 0 false}]"},
		{"abort uploads", rule(`<ID>mpu</ID><Filter><Prefix></Prefix></Filter><Status>Enabled</Status><AbortIncompleteMultipartUpload><DaysAfterInitiation>3</DaysAfterInitiation></AbortIncompleteMultipartUpload>`),
			"[{mpu true  [] 0 0 0 0 3 false}]"},
		{"not XML", "<Lifecycle", "MalformedXML"},
		{"no rule", "<LifecycleConfiguration></LifecycleConfiguration>", "MalformedXML"},
		{"no status", rule(`<ID>a</ID><Filter/><Expiration><Days>1</Days></Expiration>`), "MalformedXML"},
		{"status in lower case", rule(`<ID>a</ID><Filter/><Status>enabled</Status><Expiration><Days>1</Days></Expiration>`), "MalformedXML"},
		{"no action", rule(`<ID>a</ID><Filter/><Status>Enabled</Status>`), "InvalidArgument"},
		{"zero days", rule(`<ID>a</ID><Filter/><Status>Enabled</Status><Expiration><Days>0</Days></Expiration>`), "InvalidArgument"},
		{"days and date", rule(`<ID>a</ID><Filter/><Status>Enabled</Status><Expiration><Days>1</Days><Date>2027-01-01T00:00:00Z</Date></Expiration>`), "InvalidArgument"},
		{"date not midnight", rule(`<ID>a</ID><Filter/><Status>Enabled</Status><Expiration><Date>2027-01-01T10:00:00Z</Date></Expiration>`), "InvalidArgument"},
		{"two conditions outside And", rule(`<ID>a</ID><Filter><Prefix>a</Prefix><ObjectSizeLessThan>5</ObjectSizeLessThan></Filter><Status>Enabled</Status><Expiration><Days>1</Days></Expiration>`), "InvalidArgument"},
		{"abort with tags", rule(`<ID>a</ID><Filter><Tag><Key>k</Key><Value>v</Value></Tag></Filter><Status>Enabled</Status><AbortIncompleteMultipartUpload><DaysAfterInitiation>1</DaysAfterInitiation></AbortIncompleteMultipartUpload>`), "InvalidArgument"},
		{"transition", rule(`<ID>a</ID><Filter/><Status>Enabled</Status><Transition><Days>30</Days><StorageClass>GLACIER</StorageClass></Transition>`), "NotImplemented"},
		{"noncurrent", rule(`<ID>a</ID><Filter/><Status>Enabled</Status><NoncurrentVersionExpiration><NoncurrentDays>1</NoncurrentDays></NoncurrentVersionExpiration>`), "NotImplemented"},
		{"same id twice", "<LifecycleConfiguration><Rule><ID>a</ID><Status>Enabled</Status><Expiration><Days>1</Days></Expiration></Rule><Rule><ID>a</ID><Status>Enabled</Status><Expiration><Days>2</Days></Expiration></Rule></LifecycleConfiguration>", "InvalidArgument"},
		{"empty size range", rule(`<ID>a</ID><Filter><And><ObjectSizeGreaterThan>10</ObjectSizeGreaterThan><ObjectSizeLessThan>10</ObjectSizeLessThan></And></Filter><Status>Enabled</Status><Expiration><Days>1</Days></Expiration>`), "InvalidArgument"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rules, err := Parse([]byte(tt.body))
			got := fmt.Sprint(rules)
			var se *s3proto.Error
			if errors.As(err, &se) {
				got = se.Code
			} else if err != nil {
				got = err.Error()
			}
			if got != tt.want {
				t.Fatalf("got %s, want %s", got, tt.want)
			}
			if err != nil {
				return
			}
			// What GetBucketLifecycleConfiguration answers reads back as the same rules,
			// a prefix in the form it was given.
			b, err := xml.Marshal(Marshal(rules, ""))
			if err != nil {
				t.Fatal(err)
			}
			if rules[0].RulePrefix != bytes.Contains(b, []byte("<Rule><ID>a</ID><Prefix>")) {
				t.Fatalf("answered as %s", b)
			}
			again, err := Parse(b)
			if err != nil || fmt.Sprint(again) != fmt.Sprint(rules) {
				t.Fatalf("round trip through %s: %v, %v", b, again, err)
			}
		})
	}
	rules, err := Parse([]byte(rule(`<Filter/><Status>Enabled</Status><Expiration><Days>1</Days></Expiration>`)))
	if err != nil || rules[0].ID == "" {
		t.Fatalf("a rule without an ID: %v, %v", rules, err)
	}
}

// TestDue pins S3's expiry times: the midnight UTC at least the rule's days after the
// key was written, or the rule's date; and with a short day, its multiples.
func TestDue(t *testing.T) {
	written := time.Date(2026, 12, 1, 10, 30, 0, 0, time.UTC).UnixNano()
	day := 24 * time.Hour
	tests := []struct {
		rule index.LifecycleRule
		day  time.Duration
		want time.Time
	}{
		{index.LifecycleRule{ExpireDays: 1}, day, time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC)},
		{index.LifecycleRule{ExpireDays: 30}, day, time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)},
		{index.LifecycleRule{ExpireDate: time.Date(2027, 6, 1, 0, 0, 0, 0, time.UTC).UnixNano()}, day, time.Date(2027, 6, 1, 0, 0, 0, 0, time.UTC)},
		{index.LifecycleRule{ExpireDays: 2}, time.Second, time.Date(2026, 12, 1, 10, 30, 2, 0, time.UTC)},
	}
	for _, tt := range tests {
		got, ok := Due(tt.rule, written, tt.day)
		if !ok || !time.Unix(0, got).Equal(tt.want) {
			t.Errorf("Due(%+v, a %v day) = %v, want %v", tt.rule, tt.day, time.Unix(0, got).UTC(), tt.want)
		}
	}
	if _, ok := Due(index.LifecycleRule{AbortDays: 1}, written, day); ok {
		t.Error("a rule that only aborts uploads expires keys")
	}
	if got, ok := UploadDue(index.LifecycleRule{Enabled: true, AbortDays: 1, Prefix: "a/"}, "a/b", written, day); !ok || !time.Unix(0, got).Equal(time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("UploadDue = %v, %v", time.Unix(0, got).UTC(), ok)
	}
	if h := Header(time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC).UnixNano(), "tmp"); h != `expiry-date="Thu, 03 Dec 2026 00:00:00 GMT", rule-id="tmp"` {
		t.Errorf("header %s", h)
	}
}

func TestMatches(t *testing.T) {
	r := index.LifecycleRule{Enabled: true, Prefix: "logs/", Tags: []index.Tag{{Key: "keep", Value: "no"}}, SizeGreater: 10, SizeLess: 100}
	tags := []index.Tag{{Key: "a", Value: "b"}, {Key: "keep", Value: "no"}}
	tests := []struct {
		name string
		key  string
		size int64
		tags []index.Tag
		rule index.LifecycleRule
		want bool
	}{
		{"all hold", "logs/x", 50, tags, r, true},
		{"other prefix", "data/x", 50, tags, r, false},
		{"too small", "logs/x", 10, tags, r, false},
		{"too large", "logs/x", 100, tags, r, false},
		{"tag missing", "logs/x", 50, tags[:1], r, false},
		{"disabled", "logs/x", 50, tags, index.LifecycleRule{Prefix: "logs/"}, false},
		{"no filter", "any", 0, nil, index.LifecycleRule{Enabled: true}, true},
	}
	for _, tt := range tests {
		if got := Matches(tt.rule, tt.key, tt.size, tt.tags); got != tt.want {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}
}
