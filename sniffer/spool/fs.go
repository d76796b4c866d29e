package spool

import (
	"io/fs"
	"os"
)

// Spool modes: calls are private to the agent's user and group (the web
// GUI or a backup job reads them through the group), never world-readable.
// The process umask still applies on top.
const (
	dirMode  fs.FileMode = 0o750
	fileMode fs.FileMode = 0o640
)

// fileSystem is what the I/O goroutines need of the disk. Tests inject a
// slow or failing one; production uses osFS.
type fileSystem interface {
	MkdirAll(path string, perm fs.FileMode) error
	OpenFile(name string, flag int, perm fs.FileMode) (diskFile, error)
	Rename(oldpath, newpath string) error
}

// diskFile is an open spool file.
type diskFile interface {
	WriteAt(b []byte, off int64) (int, error)
	Close() error
}

type osFS struct{}

func (osFS) MkdirAll(path string, perm fs.FileMode) error { return os.MkdirAll(path, perm) }

func (osFS) OpenFile(name string, flag int, perm fs.FileMode) (diskFile, error) {
	f, err := os.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err // a nil *os.File must not become a non-nil diskFile
	}
	return f, nil
}

func (osFS) Rename(oldpath, newpath string) error { return os.Rename(oldpath, newpath) }
