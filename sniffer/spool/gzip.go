package spool

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/klauspost/compress/gzip"
)

// gzipper compresses a write buffer into one whole gzip member (RFC 1952
// §2.2: a gzip file is a series of members). Compressing each buffer on
// its own keeps no per-file compressor state, so the memory of compression
// does not grow with the calls: one compressor per I/O goroutine and level.
type gzipper struct {
	level int
	zw    *gzip.Writer
	out   bytes.Buffer
}

// member returns b as one gzip member, valid until the next call.
func (z *gzipper) member(b []byte) ([]byte, error) {
	z.out.Reset()
	if z.zw == nil {
		zw, err := gzip.NewWriterLevel(&z.out, z.level)
		if err != nil {
			return nil, err
		}
		z.zw = zw
	} else {
		z.zw.Reset(&z.out)
	}
	if _, err := z.zw.Write(b); err != nil {
		return nil, err
	}
	if err := z.zw.Close(); err != nil {
		return nil, err
	}
	return z.out.Bytes(), nil
}

// OpenPcap opens a spool pcap by its plain name (….pcap): that file, or
// else its compressed form (….pcap.gz, pcap_dump_zip) decompressed while
// read. Neither: an error wrapping fs.ErrNotExist (the plain name's).
func OpenPcap(path string) (io.ReadCloser, error) {
	f, err := os.Open(path)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return f, err
	}
	gz, gzErr := os.Open(path + ".gz")
	if gzErr != nil {
		if errors.Is(gzErr, fs.ErrNotExist) {
			return nil, err
		}
		return nil, gzErr
	}
	r, gzErr := NewGzipReader(gz)
	if gzErr != nil {
		gz.Close()
		return nil, fmt.Errorf("spool: %s.gz: %w", path, gzErr)
	}
	return r, nil
}

// NewGzipReader returns the decompressed bytes of a gzip file (every
// member) read from rc; closing it closes rc.
func NewGzipReader(rc io.ReadCloser) (io.ReadCloser, error) {
	zr, err := gzip.NewReader(bufio.NewReaderSize(rc, 64<<10))
	if err != nil {
		return nil, err
	}
	return gzipReadCloser{zr, rc}, nil
}

type gzipReadCloser struct {
	*gzip.Reader
	file io.Closer
}

func (g gzipReadCloser) Close() error {
	err := g.Reader.Close()
	if cerr := g.file.Close(); err == nil {
		err = cerr
	}
	return err
}
