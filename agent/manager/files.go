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

// openSpoolPcap opens rel inside the spool as the web downloads do
// (spool.Open: a regular file, no symlink on the way, never out of the
// spool); a missing ….pcap is served from its compressed ….pcap.gz
// (pcap_dump_zip) when that exists: gz says so.
func (s *Server) openSpoolPcap(rel string) (f *os.File, fi fs.FileInfo, gz bool, err error) {
	return spool.OpenStored(s.cfg.SpoolDir, rel)
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
		file, _, gz, err := s.openSpoolPcap(rel)
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
// `permission_denied` per path, joined with ";" (order kept).
func (s *Server) fileExists(_ context.Context, w io.Writer, req *Request) error {
	f := strings.Fields(req.Args)
	arg := ""
	if len(f) > 0 {
		arg = f[0]
	}
	var out []string
	for _, p := range strings.Split(arg, "|") {
		rel, ok := s.spoolPath(p)
		if !ok {
			out = append(out, "permission_denied")
			continue
		}
		file, fi, _, err := s.openSpoolPcap(rel) // a compressed pcap: its size on disk
		switch {
		case err == nil:
			_ = file.Close()
			out = append(out, strconv.FormatInt(fi.Size(), 10))
		case errors.Is(err, fs.ErrPermission):
			out = append(out, "permission_denied")
		default:
			out = append(out, "not_exists")
		}
	}
	_, err := io.WriteString(w, strings.Join(out, ";"))
	return err
}
