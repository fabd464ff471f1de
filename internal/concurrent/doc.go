// Package concurrent runs work at once (Parallel, with the last item on the calling
// goroutine) and on a schedule (Every): the two shapes of concurrency davkv's master
// and commands repeat.
package concurrent
