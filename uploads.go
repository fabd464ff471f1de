package main

// An upload's parts as the index lists them, and removing an upload, parts and all:
// what S3's abort, the sweep of abandoned uploads and verify -fix share.

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"davkv/internal/index"
)

// uploadParts calls fn with every part entry of upload id, in part number order.
func uploadParts(idx index.Index, id string, fn func(n int, p index.UploadPart, rev int64) (bool, error)) error {
	prefix := id + "/"
	return idx.Entries(index.PartSpace, prefix, func(name string, value []byte, rev int64) (bool, error) {
		num, ok := strings.CutPrefix(name, prefix)
		if !ok {
			return false, nil
		}
		n, err := strconv.Atoi(num)
		if err != nil {
			return false, fmt.Errorf("%w: part entry %q", index.ErrBadRecord, name)
		}
		var p index.UploadPart
		if err := p.UnmarshalBinary(value); err != nil {
			return false, err
		}
		return fn(n, p, rev)
	})
}

// removeUpload deletes every part of upload id, files then entries, then the upload:
// what AbortMultipartUpload, a completion and the removal of abandoned uploads share.
// What fails stays recorded, for the next try.
func removeUpload(ctx context.Context, idx index.Index, client *VolumeClient, id string) error {
	var errs []error
	var numbers []int
	err := uploadParts(idx, id, func(n int, _ index.UploadPart, _ int64) (bool, error) {
		numbers = append(numbers, n)
		return true, nil
	})
	for _, n := range numbers {
		errs = append(errs, removePart(ctx, idx, client, id, n))
	}
	if err = errors.Join(append(errs, err)...); err != nil {
		return fmt.Errorf("remove upload %s: %w", id, err)
	}
	_, rev, err := idx.GetEntry(index.UploadSpace, id)
	if errors.Is(err, index.ErrNotFound) {
		return nil
	}
	if err == nil {
		err = idx.DeleteEntry(index.UploadSpace, id, rev)
	}
	if err != nil {
		return fmt.Errorf("remove upload %s: %w", id, err)
	}
	return nil
}
