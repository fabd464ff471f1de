package policy

// The policies davkv keys can name instead of a document.

// Canned are policies known by name, for davkv keys add -policy NAME.
var Canned = map[string]string{
	// readwrite may do everything davkv checks, in every bucket.
	"readwrite": `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}`,
	// readonly may list and read every bucket, and change nothing.
	"readonly": `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:GetObject","s3:GetObjectAttributes","s3:GetObjectTagging","s3:ListAllMyBuckets","s3:ListBucket","s3:ListBucketVersions","s3:ListBucketMultipartUploads","s3:ListMultipartUploadParts","s3:GetBucketLocation","s3:GetBucketVersioning","s3:GetLifecycleConfiguration","s3:GetBucketPolicy"],"Resource":"*"}]}`,
}

// PublicRead is the bucket policy that lets anyone, signed or not, read bucket's
// objects: what S3's public-read buckets are.
func PublicRead(bucket string) Policy {
	return Policy{Version: Version, Statement: []Statement{{
		Sid: "PublicRead", Effect: Allow, Principal: &Principal{Anyone: true},
		Action: Strings{"s3:GetObject"}, Resource: Strings{ARNPrefix + bucket + "/*"},
	}}}
}
