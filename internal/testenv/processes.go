package testenv

// The process groups the tests start, checked at the end of a test binary.

import (
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// testProcesses are the servers the tests started (nginx, etcd, masters, make run),
// each the leader of a process group of its own: TestMain checks at the end that every
// group is gone, so that no test leaves a process behind.
var testProcesses = struct {
	sync.Mutex
	Started []startedProcess
}{}

type startedProcess struct {
	pgid int
	what string
}

// Started records cmd, begun in a process group of its own (Setpgid), as what.
func Started(cmd *exec.Cmd, what string) {
	testProcesses.Lock()
	defer testProcesses.Unlock()
	testProcesses.Started = append(testProcesses.Started, startedProcess{cmd.Process.Pid, what})
}

// LeftRunning kills the process groups the tests Started and left running, after a
// moment for those just stopped, and says which they were.
func LeftRunning() []string {
	testProcesses.Lock()
	defer testProcesses.Unlock()
	alive := func(p startedProcess) bool { return syscall.Kill(-p.pgid, 0) == nil }
	for range 50 {
		if !slices.ContainsFunc(testProcesses.Started, alive) {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	var left []string
	for _, p := range testProcesses.Started {
		if alive(p) {
			left = append(left, fmt.Sprintf("%s (process group %d)", p.what, p.pgid))
			syscall.Kill(-p.pgid, syscall.SIGKILL)
		}
	}
	return left
}

// CheckLeft returns code, the exit status of a test binary's tests, or 1 if a process
// they started is still running (which it kills, and names on stderr).
func CheckLeft(code int) int {
	if left := LeftRunning(); len(left) > 0 {
		fmt.Fprintf(os.Stderr, "the tests left running (now killed): %s\n", strings.Join(left, "; "))
		return 1
	}
	return code
}

// Main is the TestMain of a package whose tests start servers: it runs them and fails
// the test binary if any is left running.
func Main(m *testing.M) { os.Exit(CheckLeft(m.Run())) }
