package spool

import (
	"context"
	"runtime"
	"testing"

	"pbx-agent/internal/testkit"
)

// Test hooks: external tests inject a file system (slow, gated, failing).
type (
	FS       = fileSystem
	DiskFile = diskFile
)

// NewWithFS is New over fsys instead of the operating system's.
func NewWithFS(cfg Config, fsys FS) (*Spool, error) {
	return newSpool(cfg, fsys)
}

// CleanNow runs one cleaning pass once the start-up scan is over and
// returns the files and bytes it removed.
func CleanNow(s *Spool) (files int, bytes int64) {
	<-s.pool.indexed
	r := s.pool.pass(context.Background())
	return r.files, r.bytes
}

// Indexed waits for the start-up scan and returns what it indexed.
func Indexed(s *Spool) (files int, bytes int64) {
	<-s.pool.indexed
	s.pool.mu.Lock()
	defer s.pool.mu.Unlock()
	return s.pool.scanned.files, s.pool.scanned.bytes
}

// Start runs s (Run) until the test ends and returns once Run has
// started; the cleanup stops it and waits. A test's own Close comes first.
func Start(tb testing.TB, s *Spool) {
	stop := testkit.Run(tb, s.Run)
	tb.Cleanup(func() {
		if err := stop(); err != nil {
			tb.Error(err)
		}
	})
	for {
		s.life.Lock()
		started := s.started
		s.life.Unlock()
		if started {
			return
		}
		runtime.Gosched()
	}
}

// OpenerDirs is how many directories o keeps (opened or refused).
func OpenerDirs(o *Opener) int { return len(o.dirs) }

// MaxOpenerDirs is maxOpenerDirs.
const MaxOpenerDirs = maxOpenerDirs
