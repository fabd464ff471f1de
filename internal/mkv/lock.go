// isLocked is Linux-only (flock), as davkv is.
package mkv

import (
	"os"
	"path/filepath"
	"syscall"
)

// isLocked reports whether another process holds the lock of the LevelDB at dir.
func isLocked(dir string) bool {
	f, err := os.Open(filepath.Join(dir, "LOCK"))
	if err != nil {
		return false
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB); err != nil {
		return true
	}
	syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	return false
}
