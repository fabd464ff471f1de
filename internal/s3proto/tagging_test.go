package s3proto

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestParseTags(t *testing.T) {
	tests := []struct {
		name, header string
		want         string // the tags, or the error code
	}{
		{"none", "", "[]"},
		{"two", "a=1&b%20c=d%26e", "[{a 1} {b c d&e}]"},
		{"empty value", "k=", "[{k }]"},
		{"no value", "k", "[{k }]"},
		{"ten", "a=1&b=1&c=1&d=1&e=1&f=1&g=1&h=1&i=1&j=1", "[{a 1} {b 1} {c 1} {d 1} {e 1} {f 1} {g 1} {h 1} {i 1} {j 1}]"},
		{"eleven", "a=1&b=1&c=1&d=1&e=1&f=1&g=1&h=1&i=1&j=1&k=1", "InvalidTag"},
		{"empty key", "=v", "InvalidTag"},
		{"same key twice", "a=1&a=2", "InvalidTag"},
		{"key of 128", strings.Repeat("ü", 128) + "=v", "[{" + strings.Repeat("ü", 128) + " v}]"},
		{"key of 129", strings.Repeat("k", 129) + "=v", "InvalidTag"},
		{"value of 257", "k=" + strings.Repeat("v", 257), "InvalidTag"},
		{"bad escape", "k=%zz", "InvalidArgument"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tags, err := ParseTagHeader(tt.header)
			got := fmt.Sprint(tags)
			if tags == nil && err == nil {
				got = "[]"
			}
			var se *Error
			if errors.As(err, &se) {
				got = se.Code
			}
			if got != tt.want {
				t.Fatalf("got %s, want %s", got, tt.want)
			}
		})
	}
	tags, err := ParseTagging([]byte(`<Tagging><TagSet><Tag><Key>a</Key><Value>1</Value></Tag></TagSet></Tagging>`))
	if err != nil || fmt.Sprint(tags) != "[{a 1}]" {
		t.Fatalf("ParseTagging: %v, %v", tags, err)
	}
	if _, err := ParseTagging([]byte(`<Tagging><TagSet>`)); !errors.Is(err, ErrMalformedXML) {
		t.Fatalf("ParseTagging of bad XML: %v", err)
	}
}
