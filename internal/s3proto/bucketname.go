package s3proto

// Which names may be buckets, by S3's rules.

import (
	"net/netip"
	"strings"
)

// CheckBucketName returns why name cannot be a bucket, by S3's rules, or nil.
func CheckBucketName(name string) error {
	bad := func(why string) error {
		return Errorf(ErrInvalidBucketName, "The bucket name %q is not valid: %s.", name, why)
	}
	switch {
	case len(name) < 3 || len(name) > 63:
		return bad("it must have 3 to 63 characters")
	case strings.Trim(name, "abcdefghijklmnopqrstuvwxyz0123456789.-") != "":
		return bad("it may hold only lowercase letters, digits, '.' and '-'")
	case !isAlnum(name[0]) || !isAlnum(name[len(name)-1]):
		return bad("it must begin and end with a letter or digit")
	case strings.Contains(name, ".."):
		return bad("it must not hold two periods in a row")
	}
	if _, err := netip.ParseAddr(name); err == nil {
		return bad("it must not be an IP address")
	}
	return nil
}

func isAlnum(c byte) bool { return 'a' <= c && c <= 'z' || '0' <= c && c <= '9' }
