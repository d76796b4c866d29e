package webui

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"pbx-agent/sniffer/spool"
)

func randRead(b []byte) (int, error) { return rand.Read(b) }

// FileKind is a spool directory type (spec §7).
type FileKind string

// The spool files the web APIs read.
const (
	KindSIP   FileKind = "SIP"
	KindRTP   FileKind = "RTP"
	KindAudio FileKind = "AUDIO"
)

// SpoolFile names one call's file.
type SpoolFile struct {
	Kind     FileKind
	CallDate time.Time // the call's first packet (cdr.calldate)
	Basename string    // cdr_next.fbasename
	SensorID int
	// Ext is the AUDIO file's extension: "wav" (when empty) or "ogg"
	// (saveaudio = ogg).
	Ext string
}

// Spool opens call files. A missing file is an error wrapping fs.ErrNotExist.
type Spool interface {
	Open(ctx context.Context, f SpoolFile) (io.ReadCloser, error)
}

// DirSpool reads VoIPmonitor's plain spool layout:
// <Root>/YYYY-MM-DD/HH/MM/<KIND>/<fbasename>.<ext> with the date in
// Location (VoIPmonitor uses local time unless `utc`), ext pcap for SIP and
// RTP (or pcap.gz, read decompressed) and wav or ogg for AUDIO. Per-minute tar
// archives are not read.
type DirSpool struct {
	Root     string
	Location *time.Location // nil = UTC
}

// Path returns where f lives (exported for the spool writer's tests and tools).
func (d DirSpool) Path(f SpoolFile) (string, error) {
	if f.Basename == "" || f.Basename == "." || f.Basename == ".." || strings.ContainsAny(f.Basename, "/\\\x00") {
		return "", fmt.Errorf("%w: bad spool file name %q", ErrNotFound, f.Basename)
	}
	loc := d.Location
	if loc == nil {
		loc = time.UTC
	}
	t := f.CallDate.In(loc)
	ext := ".pcap"
	if f.Kind == KindAudio {
		switch f.Ext {
		case "", "wav":
			ext = ".wav"
		case "ogg":
			ext = ".ogg"
		default:
			return "", fmt.Errorf("%w: audio file type %q", ErrNotFound, f.Ext)
		}
	}
	return filepath.Join(d.Root, t.Format("2006-01-02"), twoDigits(t.Hour()), twoDigits(t.Minute()),
		string(f.Kind), f.Basename+ext), nil
}

func twoDigits(n int) string {
	s := strconv.Itoa(n)
	if len(s) < 2 {
		s = "0" + s
	}
	return s
}

// Open opens f; the name is checked so it cannot leave Root, and the file
// is opened as the manager API's getfile opens it (spool.Open): a symlink,
// a directory or a device there is refused as a missing file is.
func (d DirSpool) Open(_ context.Context, f SpoolFile) (io.ReadCloser, error) {
	rel, err := DirSpool{Location: d.Location}.Path(f)
	if err != nil {
		return nil, err
	}
	root, err := os.OpenRoot(d.Root)
	if err != nil {
		return nil, err
	}
	defer root.Close() // what was opened in it stays open
	var fh io.ReadCloser
	if f.Kind == KindAudio {
		var file *os.File
		if file, _, err = spool.Open(root, rel); err == nil {
			fh = file
		}
	} else {
		fh, err = spool.OpenPcap(root, rel) // or its .pcap.gz (pcap_dump_zip), decompressed
	}
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w: %s file of the call is not in the spool", fs.ErrNotExist, strings.ToLower(string(f.Kind)))
		}
		return nil, err
	}
	return fh, nil
}
