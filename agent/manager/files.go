package manager

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"pbx-agent/sniffer/spool"
)

// spoolPath turns a getfile/file_exists argument into a path relative to the
// spool, or ok=false when it would leave the spool (`access denied`).
// Absolute paths are accepted only inside the spool directory.
func (s *Server) spoolPath(arg string) (string, bool) {
	if s.cfg.SpoolDir == "" || arg == "" || strings.ContainsRune(arg, 0) {
		return "", false
	}
	p := arg
	if filepath.IsAbs(p) {
		root := filepath.Clean(s.cfg.SpoolDir)
		rel, err := filepath.Rel(root, filepath.Clean(p))
		if err != nil {
			return "", false
		}
		p = rel
	}
	for _, part := range strings.Split(filepath.ToSlash(p), "/") {
		if part == ".." {
			return "", false
		}
	}
	p = filepath.Clean(p)
	if !filepath.IsLocal(p) {
		return "", false
	}
	return p, true
}

// openPcap opens rel inside the spool as the web downloads do
// (spool.OpenStored: a regular file, no symlink on the way, never out of
// the spool); a missing ….pcap is served from its compressed ….pcap.gz
// (pcap_dump_zip) when that exists: gz says so.
func (s *Server) openPcap(rel string) (f *os.File, gz bool, err error) {
	root, err := os.OpenRoot(s.cfg.SpoolDir)
	if err != nil {
		return nil, false, err
	}
	defer root.Close()
	f, _, gz, err = spool.OpenStored(root, rel)
	return f, gz, err
}

// getFile: `getfile <relpath> [spool_index] [type]`; raw bytes, or gzip for
// getfile_zip. A ….pcap kept compressed is sent decompressed by getfile and
// as stored (already gzip) by getfile_zip.
func (s *Server) getFile(zip bool) func(context.Context, io.Writer, *Request) error {
	return func(_ context.Context, w io.Writer, req *Request) error {
		f := strings.Fields(req.Args)
		arg := ""
		if len(f) > 0 {
			arg = f[0]
		}
		rel, ok := s.spoolPath(arg)
		if !ok {
			_, err := io.WriteString(w, replyAccessDenied)
			return err
		}
		file, gz, err := s.openPcap(rel)
		if err != nil {
			_, err := fmt.Fprintf(w, "error: cannot open file %s", arg)
			return err
		}
		defer file.Close()
		if gz && !zip {
			zr, err := spool.NewGzipReader(file)
			if err != nil {
				return err
			}
			_, err = io.Copy(w, zr)
			return err
		}
		if !zip || gz {
			_, err = io.Copy(w, file)
			return err
		}
		zw := newGzipWriter(w)
		if _, err := io.Copy(zw, file); err != nil {
			return err
		}
		return zw.Close()
	}
}

// fileExists: `file_exists <relpath>[|<relpath>…]` → size, `not_exists` or
// `permission_denied` per path, joined with ";" (order kept). The spool
// root is opened once for the request, and each directory in it checked
// and opened once (spool.Opener), not once per path and candidate.
func (s *Server) fileExists(_ context.Context, w io.Writer, req *Request) error {
	f := strings.Fields(req.Args)
	arg := ""
	if len(f) > 0 {
		arg = f[0]
	}
	var spoolDirs *spool.Opener
	var rootErr error
	if s.cfg.SpoolDir != "" {
		var root *os.Root
		root, rootErr = os.OpenRoot(s.cfg.SpoolDir)
		if rootErr == nil {
			defer root.Close()
			spoolDirs = spool.NewOpener(root)
			defer spoolDirs.Close()
		}
	}
	var out []byte
	for i, p := range strings.Split(arg, "|") {
		if i > 0 {
			out = append(out, ';')
		}
		rel, ok := s.spoolPath(p)
		if !ok {
			out = append(out, "permission_denied"...)
			continue
		}
		err := rootErr
		var fi fs.FileInfo
		if err == nil {
			var file *os.File
			file, fi, _, err = spoolDirs.OpenStored(rel) // a compressed pcap: its size on disk
			if err == nil {
				_ = file.Close()
			}
		}
		switch {
		case err == nil:
			out = strconv.AppendInt(out, fi.Size(), 10)
		case errors.Is(err, fs.ErrPermission):
			out = append(out, "permission_denied"...)
		default:
			out = append(out, "not_exists"...)
		}
	}
	_, err := w.Write(out)
	return err
}
