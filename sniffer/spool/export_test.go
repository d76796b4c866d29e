package spool

// Test hooks: external tests inject a file system (slow, gated, failing).
type (
	FS       = fileSystem
	DiskFile = diskFile
)

// NewWithFS is New over fsys instead of the operating system's.
func NewWithFS(cfg Config, paused func(ref uint64) bool, fsys FS) (*Spool, error) {
	return newSpool(cfg, paused, fsys)
}
