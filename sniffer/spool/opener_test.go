package spool_test

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"

	"pbx-agent/sniffer/spool"
)

// TestOpenerRefusesNonRegular: one Opener (a request's many names) refuses
// what Open refuses, whatever it looked at before: each case is opened in
// order, then all again backwards, so every directory is answered once by
// looking at it and then from what the Opener kept of it. A refused
// directory stays refused for the names below it, and a symlinked
// directory is refused even after the directory it points to was opened.
func TestOpenerRefusesNonRegular(t *testing.T) {
	base := t.TempDir()
	root := filepath.Join(base, "spool")
	sip := filepath.Join(root, "2024-01-01", "00", "00", "SIP")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(sip, 0o755))
	must(os.MkdirAll(filepath.Join(root, "2024-01-01", "00", "00", "RTP"), 0o755))
	must(os.WriteFile(filepath.Join(sip, "a.pcap"), []byte("A"), 0o644))
	must(os.WriteFile(filepath.Join(sip, "b.pcap"), []byte("B"), 0o644))
	must(os.WriteFile(filepath.Join(root, "2024-01-01", "00", "00", "RTP", "a.pcap"), []byte("RTP"), 0o644))
	must(os.WriteFile(filepath.Join(base, "secret"), []byte("SECRET"), 0o644))
	must(os.MkdirAll(filepath.Join(base, "elsewhere", "SIP"), 0o755))
	must(os.WriteFile(filepath.Join(base, "elsewhere", "SIP", "a.pcap"), []byte("ELSEWHERE"), 0o644))
	must(os.Symlink(filepath.Join(base, "secret"), filepath.Join(sip, "out.pcap")))
	must(os.Symlink("a.pcap", filepath.Join(sip, "in.pcap")))
	must(os.Symlink(filepath.Join(base, "elsewhere"), filepath.Join(root, "2024-01-01", "00", "01")))
	must(os.Symlink("00", filepath.Join(root, "2024-01-01", "00", "02"))) // to a directory the Opener opened
	must(os.Symlink("SIP", filepath.Join(root, "2024-01-01", "00", "00", "LINK")))
	must(os.WriteFile(filepath.Join(root, "2024-01-01", "00", "03"), []byte("FILE"), 0o644)) // a file where a directory is looked for
	must(syscall.Mkfifo(filepath.Join(sip, "fifo.pcap"), 0o644))

	tests := []struct {
		name    string
		in      string
		want    string
		wantErr error // nil: want is served
	}{
		{"regular", "2024-01-01/00/00/SIP/a.pcap", "A", nil},
		{"same directory", "2024-01-01/00/00/SIP/b.pcap", "B", nil},
		{"sibling directory", "2024-01-01/00/00/RTP/a.pcap", "RTP", nil},
		{"missing in an open directory", "2024-01-01/00/00/SIP/none.pcap", "", fs.ErrNotExist},
		{"missing directory", "2024-01-01/00/09/SIP/a.pcap", "", fs.ErrNotExist},
		{"below a missing directory", "2024-01-01/00/09/SIP/b.pcap", "", fs.ErrNotExist},
		{"symlink out", "2024-01-01/00/00/SIP/out.pcap", "", spool.ErrNotRegular},
		{"symlink in", "2024-01-01/00/00/SIP/in.pcap", "", spool.ErrNotRegular},
		{"fifo", "2024-01-01/00/00/SIP/fifo.pcap", "", spool.ErrNotRegular},
		{"symlinked dir out", "2024-01-01/00/01/SIP/a.pcap", "", spool.ErrNotRegular},
		{"symlinked dir to an opened one", "2024-01-01/00/02/SIP/a.pcap", "", spool.ErrNotRegular},
		{"symlinked leaf dir", "2024-01-01/00/00/LINK/a.pcap", "", spool.ErrNotRegular},
		{"file as directory", "2024-01-01/00/03/SIP/a.pcap", "", spool.ErrNotRegular},
		{"directory", "2024-01-01/00/00/SIP", "", spool.ErrNotRegular},
		{"root", ".", "", spool.ErrNotRegular},
		{"dotdot", "../secret", "", spool.ErrNotRegular},
		{"dotdot inside", "2024-01-01/../../secret", "", spool.ErrNotRegular},
		{"absolute", filepath.Join(base, "secret"), "", spool.ErrNotRegular},
	}
	o := spool.NewOpener(openRoot(t, root))
	defer o.Close()
	for _, pass := range []string{"forwards", "backwards"} {
		for i := range tests {
			tt := tests[i]
			if pass == "backwards" {
				tt = tests[len(tests)-1-i]
			}
			t.Run(pass+"/"+tt.name, func(t *testing.T) {
				f, _, err := o.Open(tt.in)
				if tt.wantErr != nil {
					if f != nil {
						f.Close()
					}
					if !errors.Is(err, tt.wantErr) || !errors.Is(err, fs.ErrNotExist) {
						t.Fatalf("err %v, want %v matching fs.ErrNotExist", err, tt.wantErr)
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				if b, err := io.ReadAll(f); err != nil || string(b) != tt.want {
					t.Errorf("read %q, %v; want %q", b, err, tt.want)
				}
			})
		}
	}
}

// TestOpenerDirectoriesOnce: an Opener looks at each directory once
// however many names below it it opens (the manager's file_exists asked
// 2,340 names 4 directories down and looked at 11,700 names), keeps at
// most MaxOpenerDirs directories open (plus one path's), and the files
// it opened stay readable after Close.
func TestOpenerDirectoriesOnce(t *testing.T) {
	root := t.TempDir()
	var names []string
	for m := range 2 * spool.MaxOpenerDirs {
		dir := filepath.Join("2024-01-01", "00", fmt.Sprintf("%02d", m/10), fmt.Sprintf("S%d", m%10))
		if err := os.MkdirAll(filepath.Join(root, dir), 0o755); err != nil {
			t.Fatal(err)
		}
		name := filepath.Join(dir, "x.pcap")
		if err := os.WriteFile(filepath.Join(root, name), []byte(name), 0o644); err != nil {
			t.Fatal(err)
		}
		names = append(names, name)
	}
	tests := []struct {
		name     string
		in       []string
		wantDirs int // kept after the last name
	}{
		{"one name", names[:1], 4},
		{"one name 1,000 times", slices.Repeat(names[:1], 1000), 4},
		{"ten directories of one parent", names[:10], 3 + 10},
		{"twice as many directories as kept", names, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := spool.NewOpener(openRoot(t, root))
			var files []*os.File
			for _, n := range tt.in {
				f, _, err := o.Open(n)
				if err != nil {
					t.Fatal(err)
				}
				files = append(files, f)
				if got := spool.OpenerDirs(o); got > spool.MaxOpenerDirs+4 {
					t.Fatalf("%d directories kept, want at most %d", got, spool.MaxOpenerDirs+4)
				}
			}
			if got := spool.OpenerDirs(o); tt.wantDirs >= 0 && got != tt.wantDirs {
				t.Errorf("%d directories kept, want %d", got, tt.wantDirs)
			}
			o.Close()
			for i, f := range files {
				b, err := io.ReadAll(f)
				f.Close()
				if err != nil || string(b) != tt.in[i] {
					t.Fatalf("%s after Close: %q, %v", tt.in[i], b, err)
				}
			}
		})
	}
}
