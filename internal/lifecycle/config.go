package lifecycle

// A bucket's lifecycle configuration as S3 clients send it (PutBucketLifecycleConfiguration)
// and read it back: the XML, checked by S3's rules, and the index's rules it becomes.

import (
	"encoding/xml"
	"math/rand/v2"
	"strconv"
	"time"

	"davkv/internal/index"
	"davkv/internal/s3proto"
)

// MaxRules is the most rules a configuration holds, as S3 allows.
const MaxRules = 1000

// ErrNoSuchConfiguration is S3's answer to GetBucketLifecycleConfiguration of a bucket
// that has none.
var ErrNoSuchConfiguration = &s3proto.ErrorCode{Code: "NoSuchLifecycleConfiguration", Status: 404}

// Configuration is the XML of a lifecycle configuration.
type Configuration struct {
	XMLName xml.Name `xml:"LifecycleConfiguration"`
	Xmlns   string   `xml:"xmlns,attr,omitempty"`
	Rules   []Rule   `xml:"Rule"`
}

// Rule is one rule of a Configuration. Pointers tell an element that is absent from
// one that is empty.
type Rule struct {
	ID     string  `xml:",omitempty"`
	Filter *Filter `xml:",omitempty"`
	Prefix *string `xml:",omitempty"` // the filter of old configurations
	Status string
	// Expiration and AbortIncompleteMultipartUpload are the actions davkv takes; the
	// others are there to be refused.
	Expiration                     *Expiration `xml:",omitempty"`
	AbortIncompleteMultipartUpload *struct {
		DaysAfterInitiation int64
	} `xml:",omitempty"`
	Transitions                  []struct{} `xml:"Transition"`
	NoncurrentVersionExpiration  *struct{}  `xml:",omitempty"`
	NoncurrentVersionTransitions []struct{} `xml:"NoncurrentVersionTransition"`
}

// Filter is a rule's filter: one condition, or And of several.
type Filter struct {
	Prefix                *string      `xml:",omitempty"`
	Tag                   *s3proto.Tag `xml:",omitempty"`
	ObjectSizeGreaterThan *int64       `xml:",omitempty"`
	ObjectSizeLessThan    *int64       `xml:",omitempty"`
	And                   *struct {
		Prefix                *string       `xml:",omitempty"`
		Tags                  []s3proto.Tag `xml:"Tag"`
		ObjectSizeGreaterThan *int64        `xml:",omitempty"`
		ObjectSizeLessThan    *int64        `xml:",omitempty"`
	} `xml:",omitempty"`
}

// Expiration is when a rule's keys expire: Days after they were written, or on Date
// (midnight UTC, ISO 8601).
type Expiration struct {
	Days                      int64  `xml:",omitempty"`
	Date                      string `xml:",omitempty"`
	ExpiredObjectDeleteMarker *bool  `xml:",omitempty"`
}

// Parse reads a lifecycle configuration and checks it as S3 does: MalformedXML for one
// that is not its XML, InvalidArgument for a rule that breaks S3's rules, and
// NotImplemented for transitions and noncurrent versions, which need storage classes
// and versioning. A rule without an ID gets a random one, as in S3.
func Parse(body []byte) ([]index.LifecycleRule, error) {
	var c Configuration
	if err := xml.Unmarshal(body, &c); err != nil {
		return nil, s3proto.Errorf(s3proto.ErrMalformedXML, "The XML you provided was not well-formed or did not validate against our published schema.")
	}
	if len(c.Rules) == 0 || len(c.Rules) > MaxRules {
		return nil, s3proto.Errorf(s3proto.ErrMalformedXML, "A lifecycle configuration has from 1 to %d rules.", MaxRules)
	}
	var rules []index.LifecycleRule
	ids := map[string]bool{}
	for _, r := range c.Rules {
		rule, err := parseRule(r)
		if err != nil {
			return nil, err
		}
		if ids[rule.ID] {
			return nil, s3proto.Errorf(s3proto.ErrInvalidArgument, "Rule ID must be unique. Found same ID for more than one rule: %s.", rule.ID)
		}
		ids[rule.ID] = true
		rules = append(rules, rule)
	}
	return rules, nil
}

func parseRule(r Rule) (index.LifecycleRule, error) {
	bad := func(format string, args ...any) (index.LifecycleRule, error) {
		return index.LifecycleRule{}, s3proto.Errorf(s3proto.ErrInvalidArgument, format, args...)
	}
	rule := index.LifecycleRule{ID: r.ID}
	if rule.ID == "" {
		rule.ID = strconv.FormatUint(rand.Uint64(), 36)
	}
	if len(rule.ID) > 255 {
		return bad("The ID of a rule is at most 255 characters.")
	}
	switch r.Status {
	case "Enabled":
		rule.Enabled = true
	case "Disabled":
	default: // S3's schema has these two: anything else is not its XML
		return index.LifecycleRule{}, s3proto.Errorf(s3proto.ErrMalformedXML, "The Status of rule %s must be Enabled or Disabled.", rule.ID)
	}
	if len(r.Transitions) > 0 || len(r.NoncurrentVersionTransitions) > 0 || r.NoncurrentVersionExpiration != nil {
		return rule, s3proto.Errorf(s3proto.ErrNotImplemented, "Rule %s: transitions and noncurrent versions are not implemented: davkv has one storage class and no versioning.", rule.ID)
	}
	if r.Filter != nil && r.Prefix != nil {
		return bad("Rule %s has both a Filter and a Prefix.", rule.ID)
	}
	if r.Prefix != nil {
		rule.Prefix, rule.RulePrefix = *r.Prefix, true
	}
	if f := r.Filter; f != nil {
		set := 0
		for _, given := range []bool{f.Prefix != nil, f.Tag != nil, f.ObjectSizeGreaterThan != nil, f.ObjectSizeLessThan != nil, f.And != nil} {
			if given {
				set++
			}
		}
		if set > 1 {
			return bad("The Filter of rule %s has more than one condition: put them in And.", rule.ID)
		}
		prefix, greater, less := f.Prefix, f.ObjectSizeGreaterThan, f.ObjectSizeLessThan
		var tags []s3proto.Tag
		if f.Tag != nil {
			tags = []s3proto.Tag{*f.Tag}
		}
		if a := f.And; a != nil {
			prefix, greater, less, tags = a.Prefix, a.ObjectSizeGreaterThan, a.ObjectSizeLessThan, a.Tags
		}
		if prefix != nil {
			rule.Prefix = *prefix
		}
		if greater != nil {
			rule.SizeGreater = *greater
		}
		if less != nil {
			rule.SizeLess = *less
		}
		if err := s3proto.CheckTags(tags); err != nil {
			return rule, err
		}
		for _, t := range tags {
			rule.Tags = append(rule.Tags, index.Tag(t))
		}
		if rule.SizeGreater < 0 || rule.SizeLess < 0 || rule.SizeLess != 0 && rule.SizeLess <= rule.SizeGreater {
			return bad("The object size range of rule %s is empty or negative.", rule.ID)
		}
	}
	if e := r.Expiration; e != nil {
		switch {
		case e.Days != 0 && e.Date != "":
			return bad("The Expiration of rule %s has both Days and Date.", rule.ID)
		case e.Days < 0 || e.Days == 0 && e.Date == "" && e.ExpiredObjectDeleteMarker == nil:
			return bad("'Days' for Expiration action of rule %s must be a positive integer.", rule.ID)
		case e.ExpiredObjectDeleteMarker != nil && (e.Days != 0 || e.Date != ""):
			return bad("ExpiredObjectDeleteMarker of rule %s cannot be given with Days or Date.", rule.ID)
		case e.Date != "":
			t, err := time.Parse(time.RFC3339, e.Date)
			if err != nil || !t.Equal(t.UTC().Truncate(24*time.Hour)) {
				return bad("The Date of rule %s must be midnight UTC, in ISO 8601.", rule.ID)
			}
			rule.ExpireDate = t.UnixNano()
		}
		// ExpiredObjectDeleteMarker alone asks for nothing here: there are no
		// delete markers without versioning.
		rule.ExpireDays = e.Days
	}
	if a := r.AbortIncompleteMultipartUpload; a != nil {
		if a.DaysAfterInitiation <= 0 {
			return bad("'DaysAfterInitiation' of rule %s must be a positive integer.", rule.ID)
		}
		if len(rule.Tags) > 0 || rule.SizeGreater != 0 || rule.SizeLess != 0 {
			return bad("AbortIncompleteMultipartUpload cannot be specified with Tags or object sizes (rule %s).", rule.ID)
		}
		rule.AbortDays = a.DaysAfterInitiation
	}
	if r.Expiration == nil && r.AbortIncompleteMultipartUpload == nil {
		return bad("Rule %s has no action: Expiration or AbortIncompleteMultipartUpload.", rule.ID)
	}
	return rule, nil
}

// Marshal is rules as the XML of GetBucketLifecycleConfiguration.
func Marshal(rules []index.LifecycleRule, xmlns string) Configuration {
	c := Configuration{Xmlns: xmlns}
	for _, r := range rules {
		x := Rule{ID: r.ID, Status: "Disabled"}
		if r.Enabled {
			x.Status = "Enabled"
		}
		prefix := r.Prefix
		f := &Filter{}
		conditions := 0
		for _, set := range []bool{r.Prefix != "", len(r.Tags) > 0, r.SizeGreater != 0, r.SizeLess != 0} {
			if set {
				conditions++
			}
		}
		switch {
		case conditions > 1 || len(r.Tags) > 1:
			f.And = &struct {
				Prefix                *string       `xml:",omitempty"`
				Tags                  []s3proto.Tag `xml:"Tag"`
				ObjectSizeGreaterThan *int64        `xml:",omitempty"`
				ObjectSizeLessThan    *int64        `xml:",omitempty"`
			}{Prefix: &prefix}
			for _, t := range r.Tags {
				f.And.Tags = append(f.And.Tags, s3proto.Tag(t))
			}
			if r.SizeGreater != 0 {
				f.And.ObjectSizeGreaterThan = &r.SizeGreater
			}
			if r.SizeLess != 0 {
				f.And.ObjectSizeLessThan = &r.SizeLess
			}
		case len(r.Tags) == 1:
			t := s3proto.Tag(r.Tags[0])
			f.Tag = &t
		case r.SizeGreater != 0:
			f.ObjectSizeGreaterThan = &r.SizeGreater
		case r.SizeLess != 0:
			f.ObjectSizeLessThan = &r.SizeLess
		default:
			f.Prefix = &prefix
		}
		x.Filter = f
		if r.RulePrefix {
			x.Filter, x.Prefix = nil, &prefix
		}
		if r.ExpireDays != 0 || r.ExpireDate != 0 {
			x.Expiration = &Expiration{Days: r.ExpireDays}
			if r.ExpireDate != 0 {
				x.Expiration.Date = time.Unix(0, r.ExpireDate).UTC().Format("2006-01-02T15:04:05.000Z")
			}
		}
		if r.AbortDays != 0 {
			x.AbortIncompleteMultipartUpload = &struct{ DaysAfterInitiation int64 }{r.AbortDays}
		}
		c.Rules = append(c.Rules, x)
	}
	return c
}
