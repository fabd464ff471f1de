package main

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"davkv/internal/testenv"
)

// TestUploadConnectionReused: the connection an Upload used goes back to the pool and
// serves the next request, even one whose body cannot be sent twice.
func TestUploadConnectionReused(t *testing.T) {
	v := testenv.StartVolume(t)
	c := NewVolumeClient(200*time.Millisecond, "")
	ctx := context.Background()
	u, err := c.StartUpload(ctx, v.Addr, "sv00/aa/bb/up", 3, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := u.Write([]byte("abc")); err != nil {
		t.Fatal(err)
	}
	if err := u.Finish(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)                    // past the upload's write deadline
	once := struct{ io.Reader }{strings.NewReader("def")} // not rewindable
	if err := c.Put(ctx, v.Addr, "sv00/aa/bb/next", once, 3); err != nil {
		t.Fatalf("request on the reused connection: %v", err)
	}
}
