package webui

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
)

// TestDirSpoolCompressed: a pcap kept compressed (pcap_dump_zip, .pcap.gz in
// gzip members) is read decompressed under its kind, like a plain one.
func TestDirSpoolCompressed(t *testing.T) {
	sp := DirSpool{Root: t.TempDir()}
	at := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	write := func(kind FileKind, base, ext string, b []byte) {
		p, err := sp.Path(SpoolFile{Kind: kind, CallDate: at, Basename: base})
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p+ext, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var gz bytes.Buffer
	for _, part := range []string{"rtp ", "packets"} {
		zw := gzip.NewWriter(&gz)
		_, _ = zw.Write([]byte(part))
		_ = zw.Close()
	}
	write(KindRTP, "zipped", ".gz", gz.Bytes())
	write(KindSIP, "plain", "", []byte("sip packets"))
	tests := []struct {
		kind FileKind
		base string
		want string
	}{
		{KindRTP, "zipped", "rtp packets"},
		{KindSIP, "plain", "sip packets"},
		{KindSIP, "zipped", ""},
	}
	for _, tt := range tests {
		rc, err := sp.Open(context.Background(), SpoolFile{Kind: tt.kind, CallDate: at, Basename: tt.base})
		if tt.want == "" {
			if !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("%s %s: err %v, want not found", tt.kind, tt.base, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s %s: %v", tt.kind, tt.base, err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || string(b) != tt.want {
			t.Errorf("%s %s: %q, %v; want %q", tt.kind, tt.base, b, err, tt.want)
		}
	}
}
