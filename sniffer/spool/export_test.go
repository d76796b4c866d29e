package spool

import "context"

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
