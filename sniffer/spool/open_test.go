package spool_test

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"pbx-agent/sniffer/spool"
)

// TestOpenRefusesNonRegular: spool.Open serves regular files reached
// through directories only; a symlink anywhere on the way (to a file
// outside the spool or inside it), a directory, a fifo, a name leaving the
// spool are ErrNotRegular, which a caller cannot tell from a missing file
// (both match fs.ErrNotExist). The fifo is refused without blocking.
func TestOpenRefusesNonRegular(t *testing.T) {
	base := t.TempDir()
	root := filepath.Join(base, "spool")
	dir := filepath.Join(root, "2024-01-01", "00", "00", "SIP")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(dir, 0o755))
	must(os.WriteFile(filepath.Join(dir, "call.pcap"), []byte("PCAP"), 0o644))
	must(os.WriteFile(filepath.Join(base, "secret"), []byte("SECRET"), 0o644))
	must(os.MkdirAll(filepath.Join(base, "elsewhere", "SIP"), 0o755))
	must(os.WriteFile(filepath.Join(base, "elsewhere", "SIP", "call.pcap"), []byte("ELSEWHERE"), 0o644))
	must(os.Symlink(filepath.Join(base, "secret"), filepath.Join(dir, "out.pcap")))
	must(os.Symlink("call.pcap", filepath.Join(dir, "in.pcap")))
	must(os.Symlink(filepath.Join(base, "nowhere"), filepath.Join(dir, "dangling.pcap")))
	must(os.Symlink(filepath.Join(base, "elsewhere"), filepath.Join(root, "2024-01-01", "00", "01")))
	must(os.MkdirAll(filepath.Join(root, "2024-01-01", "00", "02"), 0o755))
	must(os.Symlink("../00/SIP", filepath.Join(root, "2024-01-01", "00", "02", "SIP")))
	must(syscall.Mkfifo(filepath.Join(dir, "fifo.pcap"), 0o644))
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write([]byte("ZIPPED"))
	_ = zw.Close()
	must(os.WriteFile(filepath.Join(dir, "z.pcap.gz"), gz.Bytes(), 0o644))
	must(os.Symlink(filepath.Join(dir, "z.pcap.gz"), filepath.Join(dir, "zl.pcap.gz")))

	tests := []struct {
		name    string
		in      string
		want    string
		wantErr error // nil: want is served
	}{
		{"regular", "2024-01-01/00/00/SIP/call.pcap", "PCAP", nil},
		{"compressed", "2024-01-01/00/00/SIP/z.pcap", "ZIPPED", nil},
		{"missing", "2024-01-01/00/00/SIP/none.pcap", "", fs.ErrNotExist},
		{"symlink out", "2024-01-01/00/00/SIP/out.pcap", "", spool.ErrNotRegular},
		{"symlink in", "2024-01-01/00/00/SIP/in.pcap", "", spool.ErrNotRegular},
		{"dangling symlink", "2024-01-01/00/00/SIP/dangling.pcap", "", spool.ErrNotRegular},
		{"symlinked dir out", "2024-01-01/00/01/SIP/call.pcap", "", spool.ErrNotRegular},
		{"symlinked dir in", "2024-01-01/00/02/SIP/call.pcap", "", spool.ErrNotRegular},
		{"compressed symlink", "2024-01-01/00/00/SIP/zl.pcap", "", fs.ErrNotExist}, // the plain name's error
		{"fifo", "2024-01-01/00/00/SIP/fifo.pcap", "", spool.ErrNotRegular},
		{"directory", "2024-01-01/00/00/SIP", "", spool.ErrNotRegular},
		{"dotdot", "../secret", "", spool.ErrNotRegular},
		{"absolute", filepath.Join(base, "secret"), "", spool.ErrNotRegular},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rc, err := spool.OpenPcap(openRoot(t, root), tt.in)
			if tt.wantErr != nil {
				if rc != nil {
					rc.Close()
				}
				if !errors.Is(err, tt.wantErr) || !errors.Is(err, fs.ErrNotExist) {
					t.Fatalf("err %v, want %v matching fs.ErrNotExist", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer rc.Close()
			if b, err := io.ReadAll(rc); err != nil || string(b) != tt.want {
				t.Errorf("read %q, %v; want %q", b, err, tt.want)
			}
		})
	}
}

// openRoot opens dir as an os.Root closed when the test ends.
func openRoot(t *testing.T, dir string) *os.Root {
	t.Helper()
	r, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}
