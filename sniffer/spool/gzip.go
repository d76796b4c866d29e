package spool

import (
	"bufio"
	"bytes"
	"io"

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
