package store

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// ErrLocked: another secretbot holds the database's lock (a running bot,
// or a restore in progress).
var ErrLocked = errors.New("store: database in use")

// Lock is the exclusive hold on a database that `run` and `restore` take,
// so that a restore never swaps the file under a running bot and two bots
// never run on one database file.
type Lock struct {
	f *os.File
}

// LockPath is the lock file of the database at dbPath.
func LockPath(dbPath string) string { return dbPath + ".lock" }

// TryLock takes the lock of the database at dbPath without waiting. It
// returns an error wrapping ErrLocked, naming the holder's process id, when
// it is held. The lock is flock(2) on <db>.lock: the kernel drops it when
// its holder exits, even on SIGKILL, so a crash never leaves it stuck. The
// file itself stays (removing it would let two processes lock two different
// files of one name).
func TryLock(dbPath string) (*Lock, error) {
	path := LockPath(dbPath)
	if dir := filepath.Dir(path); dir != "" {
		if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return nil, fmt.Errorf("store: create directory: %w", err)
			}
		}
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("store: lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		holder := ""
		if b, rerr := os.ReadFile(path); rerr == nil {
			if pid, perr := strconv.Atoi(strings.TrimSpace(string(b))); perr == nil && pid > 0 {
				holder = fmt.Sprintf(" by process %d", pid)
			}
		}
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s is locked%s (%s)", ErrLocked, dbPath, holder, path)
		}
		return nil, fmt.Errorf("store: lock %s: %w", path, err)
	}
	// The holder's pid, for the message above; best effort.
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &Lock{f: f}, nil
}

// Release gives the lock up.
func (l *Lock) Release() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := syscall.Flock(int(l.f.Fd()), syscall.LOCK_UN)
	if cerr := l.f.Close(); err == nil {
		err = cerr
	}
	l.f = nil
	return err
}
