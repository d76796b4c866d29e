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
// downloads open spool files here.
func Open(r *os.Root, rel string) (*os.File, fs.FileInfo, error) {
	rel = filepath.Clean(rel)
	if !filepath.IsLocal(rel) || strings.ContainsRune(rel, 0) {
		return nil, nil, &fs.PathError{Op: "open", Path: rel, Err: ErrNotRegular}
	}
	// Lstat each name on the way down: os.Root would follow a symlink that
	// stays inside root, and a symlink is not a spool file wherever it points.
	var fi fs.FileInfo
	var err error
	for i := 0; ; {
		j := strings.IndexByte(rel[i:], filepath.Separator)
		last := j < 0
		name := rel
		if !last {
			name = rel[:i+j]
		}
		if fi, err = r.Lstat(name); err != nil {
			return nil, nil, err
		}
		if want := fi.Mode().IsDir(); (!last && !want) || (last && !fi.Mode().IsRegular()) {
			return nil, nil, &fs.PathError{Op: "open", Path: rel, Err: ErrNotRegular}
		}
		if last {
			break
		}
		i += j + 1
	}
	// O_NONBLOCK: a fifo swapped in since the walk does not hold the open.
	f, err := r.OpenFile(rel, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, nil, err
	}
	// The name may have been replaced since it was looked at: serve the file
	// only when it is still the regular file the walk saw.
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

// OpenStored is Open for a spool pcap named by its plain name (….pcap):
// that file, or else its compressed form (….pcap.gz, pcap_dump_zip) as
// stored, gz saying so. Neither: the plain name's error.
func OpenStored(r *os.Root, rel string) (f *os.File, fi fs.FileInfo, gz bool, err error) {
	f, fi, err = Open(r, rel)
	if err == nil || !errors.Is(err, fs.ErrNotExist) || !strings.HasSuffix(rel, ".pcap") {
		return f, fi, false, err
	}
	gzf, gzfi, gzErr := Open(r, rel+".gz")
	switch {
	case gzErr == nil:
		return gzf, gzfi, true, nil
	case errors.Is(gzErr, fs.ErrNotExist):
		return nil, nil, false, err
	}
	return nil, nil, false, gzErr
}

// OpenPcap opens the spool pcap rel (its plain name, ….pcap) inside r as
// OpenStored does, a compressed one decompressed while read.
func OpenPcap(r *os.Root, rel string) (io.ReadCloser, error) {
	f, _, gz, err := OpenStored(r, rel)
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
