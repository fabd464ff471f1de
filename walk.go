package main

// Walking every file on a set of volumes through nginx's JSON listings, for rebuild and
// verify.

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"
)

// volumeWalker lists every file on a set of volumes through nginx's JSON listings,
// Workers directories at once, and hands each file to its file function. Rebuild and
// verify walk with it.
type volumeWalker struct {
	client  *VolumeClient
	sem     chan struct{}
	walkers sync.WaitGroup
	file    func(volume, path string, e DirEntry) error

	dirsFound, dirsDone, files atomic.Int64
	errMu                      sync.Mutex
	errs                       []error
}

func newVolumeWalker(client *VolumeClient, workers int, file func(volume, path string, e DirEntry) error) *volumeWalker {
	return &volumeWalker{client: client, sem: make(chan struct{}, workers), file: file}
}

// Walk walks every volume and returns the first errors (listings that failed, or what
// the file function returned) once all of it is done.
func (w *volumeWalker) Walk(ctx context.Context, volumes []string) error {
	w.dirsFound.Add(int64(len(volumes)))
	for _, v := range volumes {
		w.spawn(ctx, v, "")
	}
	w.walkers.Wait()
	return errors.Join(w.errs...)
}

// spawn walks dir on volume in a new goroutine if a worker is free, else in this one:
// at most Workers listings run at once, and the directories waiting to be listed are
// only those on the walkers' paths down the tree, so memory does not grow with the
// number of files.
func (w *volumeWalker) spawn(ctx context.Context, volume, dir string) {
	select {
	case w.sem <- struct{}{}:
		w.walkers.Go(func() {
			defer func() { <-w.sem }()
			w.walk(ctx, volume, dir)
		})
	default:
		w.walk(ctx, volume, dir)
	}
}

func (w *volumeWalker) walk(ctx context.Context, volume, dir string) {
	defer w.dirsDone.Add(1)
	entries, err := w.client.List(ctx, volume, dir)
	if err != nil {
		w.fail(err)
		return
	}
	for _, e := range entries {
		if e.Type == "directory" {
			w.dirsFound.Add(1)
		}
	}
	for _, e := range entries {
		path := dir + e.Name
		if e.Type == "directory" {
			w.spawn(ctx, volume, path+"/")
			continue
		}
		w.files.Add(1)
		if err := w.file(volume, path, e); err != nil {
			w.fail(err)
		}
	}
}

func (w *volumeWalker) fail(err error) {
	w.errMu.Lock()
	defer w.errMu.Unlock()
	if len(w.errs) < 10 {
		w.errs = append(w.errs, err)
	}
}

// eta estimates the time left from the directories listed so far.
func (w *volumeWalker) eta(elapsed time.Duration) time.Duration {
	found, done := w.dirsFound.Load(), w.dirsDone.Load()
	if done == 0 || found <= done {
		return 0
	}
	return time.Duration(float64(elapsed) / float64(done) * float64(found-done)).Round(time.Second)
}
