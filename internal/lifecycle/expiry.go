package lifecycle

// Which keys and uploads a bucket's rules expire, and when: S3's rule is the midnight
// UTC after the key's time plus its days, with days of a length the master is given
// (a real day but in tests, which never wait for one).

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"davkv/internal/index"
)

// Matches reports whether rule applies to the key (bucket-relative) of size bytes with
// tags: it is enabled and every condition of its filter holds.
func Matches(rule index.LifecycleRule, key string, size int64, tags []index.Tag) bool {
	if !rule.Enabled || !strings.HasPrefix(key, rule.Prefix) {
		return false
	}
	if rule.SizeGreater != 0 && size <= rule.SizeGreater || rule.SizeLess != 0 && size >= rule.SizeLess {
		return false
	}
	for _, t := range rule.Tags {
		if !slices.Contains(tags, t) {
			return false
		}
	}
	return true
}

// Due is when rule expires a key written at written (Unix nanoseconds), with days of
// length day: its date, or the first day boundary (midnight UTC, for real days) at
// least its days after written; false if the rule expires no key.
func Due(rule index.LifecycleRule, written int64, day time.Duration) (int64, bool) {
	switch {
	case rule.ExpireDate != 0:
		return rule.ExpireDate, true
	case rule.ExpireDays != 0:
		return roundUp(written+rule.ExpireDays*int64(day), day), true
	}
	return 0, false
}

// UploadDue is when rule aborts a multipart upload under its prefix created at
// created; false if it aborts none.
func UploadDue(rule index.LifecycleRule, key string, created int64, day time.Duration) (int64, bool) {
	if !rule.Enabled || rule.AbortDays == 0 || !strings.HasPrefix(key, rule.Prefix) {
		return 0, false
	}
	return roundUp(created+rule.AbortDays*int64(day), day), true
}

// roundUp is t rounded up to a multiple of day: the next midnight UTC for a real day.
func roundUp(t int64, day time.Duration) int64 {
	d := int64(day)
	if r := t % d; r != 0 {
		t += d - r
	}
	return t
}

// Expiry is the first time one of rules expires the key (bucket-relative) of rec, and
// that rule's ID; false if none does.
func Expiry(rules []index.LifecycleRule, key string, rec index.Record, day time.Duration) (due int64, id string, ok bool) {
	for _, r := range rules {
		if !Matches(r, key, rec.Size, rec.Tags) {
			continue
		}
		if d, expires := Due(r, rec.Modified, day); expires && (!ok || d < due) {
			due, id, ok = d, r.ID, true
		}
	}
	return due, id, ok
}

// Header is the x-amz-expiration header of a key that rule id expires at due.
func Header(due int64, id string) string {
	return fmt.Sprintf("expiry-date=%q, rule-id=%q", time.Unix(0, due).UTC().Format(http.TimeFormat), id)
}
