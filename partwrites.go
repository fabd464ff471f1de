package main

// Uploads of one part number at once: each streams to files of its own, recorded in
// the part's entry (index.UploadPart.Writes) before a byte is sent, and the one that
// finishes last becomes the part, as in S3; the part it replaces is deleted. Whatever
// a failure or a crash leaves stays recorded, and is deleted with the upload.

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"davkv/internal/index"
	"davkv/internal/layout"
)

// errPartGone says a part's entry went while its upload streamed: the upload was
// aborted or completed meanwhile.
var errPartGone = errors.New("the part's upload is no more")

// updatePart changes part entry name with change, again for as long as another
// writer changes the entry between the read and the write. change sees the entry, or
// the zero part if there is none (found false); an entry left with no part stored and
// no write in flight is removed. It returns the entry as written.
func updatePart(idx index.Index, name string, change func(p *index.UploadPart, found bool) error) (index.UploadPart, error) {
	for {
		p, rev, found, err := readPart(idx, name)
		if err != nil {
			return p, err
		}
		if err := change(&p, found); err != nil {
			return p, err
		}
		switch {
		case !p.Done && len(p.Writes) == 0 && !found:
			return p, nil
		case !p.Done && len(p.Writes) == 0:
			err = idx.DeleteEntry(index.PartSpace, name, rev)
		default:
			var b []byte
			if b, err = p.MarshalBinary(); err != nil {
				return p, err
			}
			_, err = idx.PutEntry(index.PartSpace, name, b, rev)
		}
		if !errors.Is(err, index.ErrConflict) {
			return p, err
		}
	}
}

// readPart reads part entry name and its revision; found is false (and p the zero
// part) if there is none.
func readPart(idx index.Index, name string) (p index.UploadPart, rev int64, found bool, err error) {
	b, rev, err := idx.GetEntry(index.PartSpace, name)
	if errors.Is(err, index.ErrNotFound) {
		return p, 0, false, nil
	}
	if err == nil {
		err = p.UnmarshalBinary(b)
	}
	return p, rev, err == nil, err
}

// partFiles are the files part entry p records: the part stored (if Done), on its
// volumes and leftovers, and every write.
func partFiles(p index.UploadPart) []index.PartWrite {
	if !p.Done {
		return p.Writes
	}
	return append([]index.PartWrite{{Token: p.Token, Volumes: append(slices.Clone(p.Volumes), p.Leftovers...)}}, p.Writes...)
}

// withoutWrite returns writes without the one of token.
func withoutWrite(writes []index.PartWrite, token string) []index.PartWrite {
	return slices.DeleteFunc(slices.Clone(writes), func(w index.PartWrite) bool { return w.Token == token })
}

// beginPartWrite records that part n of upload id is being written under token to
// vols, before a byte is sent.
func beginPartWrite(idx index.Index, id string, n int, token string, vols []string) error {
	_, err := updatePart(idx, index.PartName(id, n), func(p *index.UploadPart, _ bool) error {
		p.Writes = append(p.Writes, index.PartWrite{Token: token, Volumes: vols})
		return nil
	})
	return err
}

// endPartWrite forgets the write of part n of upload id under token, once its files
// are deleted.
func endPartWrite(idx index.Index, id string, n int, token string) error {
	_, err := updatePart(idx, index.PartName(id, n), func(p *index.UploadPart, _ bool) error {
		p.Writes = withoutWrite(p.Writes, token)
		return nil
	})
	return err
}

// commitPartWrite makes stored, the write of its token that has finished, part n of
// upload id, and returns the part it replaced (Done false if none), which stays
// recorded among the writes until its files are deleted. errPartGone says the entry
// was removed meanwhile.
func commitPartWrite(idx index.Index, id string, n int, stored index.UploadPart) (old index.UploadPart, err error) {
	_, err = updatePart(idx, index.PartName(id, n), func(p *index.UploadPart, found bool) error {
		if !found {
			return errPartGone
		}
		old = *p
		writes := withoutWrite(partFiles(*p), stored.Token) // the part replaced among them
		*p = stored
		p.Writes = writes
		return nil
	})
	return old, err
}

// removePart deletes part n of upload id: the files of the part stored and of every
// write recorded, then the entry. A writer in flight finds the entry gone when it
// finishes, and deletes its own files.
func removePart(ctx context.Context, idx index.Index, client *VolumeClient, id string, n int) error {
	name := index.PartName(id, n)
	for range 10 {
		p, rev, found, err := readPart(idx, name)
		if err != nil || !found {
			return err
		}
		for _, w := range partFiles(p) {
			if err := deletePaths(ctx, client, w.Volumes, layout.PartPath(id, n, w.Token)); err != nil {
				return err
			}
		}
		if err := idx.DeleteEntry(index.PartSpace, name, rev); !errors.Is(err, index.ErrConflict) {
			return err
		}
	}
	return fmt.Errorf("part %d of upload %s: %w", n, id, index.ErrConflict)
}

// partHolds reports whether part entry p records the file of token on volume: the
// part stored, or a write of it.
func partHolds(p index.UploadPart, token, volume string) bool {
	return slices.ContainsFunc(partFiles(p), func(w index.PartWrite) bool { return w.Token == token && slices.Contains(w.Volumes, volume) })
}
