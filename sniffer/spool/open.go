package spool

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// Open opens rel, a path inside the spool directory r, for reading. It
// opens only what the spool writer makes: directories down to a regular
// file, none of them a symlink (wherever it points), with the walk held
// inside root by os.Root. Anything else (a symlink, a directory, a fifo
// or device, a name that leaves root) is an error wrapping ErrNotRegular,
// which matches fs.ErrNotExist too: callers answer it as they answer a
// missing file, so a file planted in the spool is neither served nor told
// apart from a missing one. Both the manager API's getfile and the web
// downloads open spool files here; an Opener opens many.
func Open(r *os.Root, rel string) (*os.File, fs.FileInfo, error) {
	o := NewOpener(r)
	defer o.Close()
	return o.Open(rel)
}

// OpenStored is Open for a spool pcap named by its plain name (….pcap):
// that file, or else its compressed form (….pcap.gz, pcap_dump_zip) as
// stored, gz saying so. Neither: the plain name's error.
func OpenStored(r *os.Root, rel string) (f *os.File, fi fs.FileInfo, gz bool, err error) {
	o := NewOpener(r)
	defer o.Close()
	return o.OpenStored(rel)
}

// OpenPcap opens the spool pcap rel (its plain name, ….pcap) inside r as
// OpenStored does, a compressed one decompressed while read.
func OpenPcap(r *os.Root, rel string) (io.ReadCloser, error) {
	o := NewOpener(r)
	defer o.Close()
	return o.OpenPcap(rel)
}

// maxOpenerDirs bounds the directories an Opener keeps (each open one
// holds a descriptor); past it, it forgets them all and starts again.
const maxOpenerDirs = 64

// An Opener opens many spool files as Open does (one request's), each
// directory on the way looked at and opened once: a directory is checked
// (lstat: a directory, not a symlink), opened inside its parent and
// checked again to be the one looked at, and the names below it are then
// looked up in that open directory. A file 4 directories down costs one
// lstat and one open instead of a walk from the root for each name on the
// way. A directory replaced while an Opener is in use is seen by the next
// Opener; names are still looked up in the directory that was checked,
// never through a symlink. Files it opened stay open after Close. An
// Opener is not safe for concurrent use.
type Opener struct {
	root *os.Root
	dirs map[string]openerDir // by path from root ("." is root)
}

// openerDir is a directory an Opener looked at: open, or refused (err).
type openerDir struct {
	r   *os.Root
	err error
}

// NewOpener returns an Opener for the spool r (still r's to close).
func NewOpener(r *os.Root) *Opener { return &Opener{root: r} }

// Close closes the directories o opened.
func (o *Opener) Close() error {
	for _, d := range o.dirs {
		if d.r != nil {
			_ = d.r.Close()
		}
	}
	o.dirs = nil
	return nil
}

// Open opens rel as the package's Open does.
func (o *Opener) Open(rel string) (*os.File, fs.FileInfo, error) {
	rel = filepath.Clean(rel)
	if !filepath.IsLocal(rel) || strings.ContainsRune(rel, 0) {
		return nil, nil, &fs.PathError{Op: "open", Path: rel, Err: ErrNotRegular}
	}
	if len(o.dirs) >= maxOpenerDirs {
		_ = o.Close()
	}
	dirName, name := ".", rel
	if i := strings.LastIndexByte(rel, filepath.Separator); i >= 0 {
		dirName, name = rel[:i], rel[i+1:]
	}
	dir, err := o.dir(dirName)
	if err != nil {
		return nil, nil, pathError(rel, err)
	}
	// Lstat first: os.Root would follow a symlink that stays inside root,
	// and a symlink is not a spool file wherever it points.
	fi, err := dir.Lstat(name)
	if err != nil {
		return nil, nil, renamed(err, rel)
	}
	if !fi.Mode().IsRegular() {
		return nil, nil, &fs.PathError{Op: "open", Path: rel, Err: ErrNotRegular}
	}
	// O_NONBLOCK: a fifo swapped in since the lstat does not hold the open.
	f, err := dir.OpenFile(name, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, nil, renamed(err, rel)
	}
	// The name may have been replaced since it was looked at: serve the file
	// only when it is still the regular file the lstat saw.
	ofi, err := f.Stat()
	if err != nil || !ofi.Mode().IsRegular() || !os.SameFile(fi, ofi) {
		_ = f.Close()
		if err == nil {
			err = &fs.PathError{Op: "open", Path: rel, Err: ErrNotRegular}
		}
		return nil, nil, err
	}
	return f, ofi, nil
}

// dir is the directory name (a clean local path) opened as described on
// Opener, or why it is refused; both are kept until Close (or until
// maxOpenerDirs are kept), as are the directories above it.
func (o *Opener) dir(name string) (*os.Root, error) {
	if name == "." {
		return o.root, nil
	}
	if d, ok := o.dirs[name]; ok {
		return d.r, d.err
	}
	parentName, base := ".", name
	if i := strings.LastIndexByte(name, filepath.Separator); i >= 0 {
		parentName, base = name[:i], name[i+1:]
	}
	parent, err := o.dir(parentName)
	var d *os.Root
	if err == nil {
		d, err = openDir(parent, base)
	}
	if o.dirs == nil {
		o.dirs = make(map[string]openerDir)
	}
	o.dirs[name] = openerDir{d, err}
	return d, err
}

// openDir opens the directory name (one name, no separator) in parent,
// refusing anything that is not a directory when looked at (a symlink to
// one too) or has been replaced before it was opened.
func openDir(parent *os.Root, name string) (*os.Root, error) {
	fi, err := parent.Lstat(name)
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		return nil, ErrNotRegular
	}
	d, err := parent.OpenRoot(name)
	if err != nil {
		return nil, err
	}
	if dfi, err := d.Stat("."); err != nil || !os.SameFile(fi, dfi) {
		_ = d.Close()
		if err == nil {
			err = ErrNotRegular
		}
		return nil, err
	}
	return d, nil
}

// pathError is err, a directory's on the way (kept by the Opener), as
// an error about rel, keeping what it wraps.
func pathError(rel string, err error) error {
	if pe, ok := err.(*fs.PathError); ok {
		err = pe.Err
	}
	return &fs.PathError{Op: "open", Path: rel, Err: err}
}

// renamed is err, just returned for a name in its directory, about rel
// instead (the *fs.PathError is changed in place: no allocation for a
// missing file).
func renamed(err error, rel string) error {
	if pe, ok := err.(*fs.PathError); ok {
		pe.Path = rel
		return pe
	}
	return &fs.PathError{Op: "open", Path: rel, Err: err}
}

// OpenStored opens rel as the package's OpenStored does.
func (o *Opener) OpenStored(rel string) (f *os.File, fi fs.FileInfo, gz bool, err error) {
	f, fi, err = o.Open(rel)
	if err == nil || !errors.Is(err, fs.ErrNotExist) || !strings.HasSuffix(rel, ".pcap") {
		return f, fi, false, err
	}
	gzf, gzfi, gzErr := o.Open(rel + ".gz")
	switch {
	case gzErr == nil:
		return gzf, gzfi, true, nil
	case errors.Is(gzErr, fs.ErrNotExist):
		return nil, nil, false, err
	}
	return nil, nil, false, gzErr
}

// OpenPcap opens rel as the package's OpenPcap does.
func (o *Opener) OpenPcap(rel string) (io.ReadCloser, error) {
	f, _, gz, err := o.OpenStored(rel)
	if err != nil {
		return nil, err // not a nil *os.File inside a non-nil interface
	}
	if !gz {
		return f, nil
	}
	zr, err := NewGzipReader(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("spool: %s.gz: %w", rel, err)
	}
	return zr, nil
}
