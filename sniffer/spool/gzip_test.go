package spool_test

import (
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"pbx-agent/sniffer/simulate"
	"pbx-agent/sniffer/spool"
)

// TestCompressedSpool replays the same generated calls into a plain and a
// compressed spool (pcap_dump_zip): every .pcap.gz decompresses to the
// bytes of the plain .pcap, is smaller, and is several gzip members when
// the call filled several buffers; tshark reads it directly; OpenPcap and
// MergeCall read it under its plain name.
func TestCompressedSpool(t *testing.T) {
	o := simulate.Options{Calls: 4, Concurrency: 4, Duration: 3 * time.Second, Seed: 11}
	_, truth := generate(t, o)
	plain, zipped := t.TempDir(), t.TempDir()
	replaySource(t, newGenerator(t, o), "5060", fullConfig(plain), nil)
	cfg := fullConfig(zipped)
	cfg.ZipSIP, cfg.ZipRTP, cfg.BufferSize = 6, 1, 4096
	res := replaySource(t, newGenerator(t, o), "5060", cfg, nil)
	if res.stats.BytesRaw <= res.stats.Bytes || res.stats.Errors != 0 {
		t.Errorf("stats: %d bytes on disk for %d raw, %d errors", res.stats.Bytes, res.stats.BytesRaw, res.stats.Errors)
	}
	for _, c := range truth.Calls {
		base := spool.FBasename(c.CallID)
		for _, typ := range []string{spool.TypeSIP, spool.TypeRTP} {
			want, err := os.ReadFile(spool.Path(plain, c.Start, time.UTC, typ, base, "pcap"))
			if err != nil {
				t.Fatal(err)
			}
			gzPath := spool.Path(zipped, c.Start, time.UTC, typ, base, "pcap.gz")
			raw, err := os.ReadFile(gzPath)
			if err != nil {
				t.Fatal(err)
			}
			if len(raw) >= len(want) {
				t.Errorf("%s: %d bytes compressed, %d plain", gzPath, len(raw), len(want))
			}
			if typ == spool.TypeRTP {
				// Members of 4 × BufferSize (the last one shorter): big
				// members cost less CPU per byte.
				sizes := memberSizes(t, raw)
				if len(sizes) < 2 {
					t.Errorf("%s: one gzip member for %d bytes in 16 KiB buffers", gzPath, len(want))
				}
				for i, n := range sizes {
					if n > 4*4096 || i < len(sizes)-1 && n <= 4*4096-300 {
						t.Errorf("%s: member %d of %d holds %d bytes, want a 16 KiB buffer's", gzPath, i, len(sizes), n)
					}
				}
			}
			if _, err := os.Stat(spool.Path(zipped, c.Start, time.UTC, typ, base, "pcap")); err == nil {
				t.Errorf("plain %s pcap written beside the compressed one", typ)
			}
			rc, err := spool.OpenPcap(openRoot(t, zipped), spool.Path("", c.Start, time.UTC, typ, base, "pcap"))
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(rc)
			rc.Close()
			if err != nil || !bytes.Equal(got, want) {
				t.Errorf("%s: decompressed %d bytes (err %v), plain pcap %d bytes, equal %v", gzPath, len(got), err, len(want), bytes.Equal(got, want))
			}
			if typ == spool.TypeRTP {
				if n, m := tsharkCount(t, gzPath, "udp"), tsharkCount(t, spool.Path(plain, c.Start, time.UTC, typ, base, "pcap"), "udp"); n != m || n == 0 {
					t.Errorf("tshark: %d UDP packets in %s, %d in the plain pcap", n, gzPath, m)
				}
			}
		}
		var a, b bytes.Buffer
		if err := spool.MergeCall(&a, plain, c.Start, time.UTC, base); err != nil {
			t.Fatal(err)
		}
		if err := spool.MergeCall(&b, zipped, c.Start, time.UTC, base); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a.Bytes(), b.Bytes()) {
			t.Errorf("call %s: merged pcap differs when compressed", c.CallID)
		}
	}
	filepath.WalkDir(zipped, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.Contains(p, "/AUDIO/") == strings.HasSuffix(p, ".gz") {
			t.Errorf("unexpected file %s", p)
		}
		return nil
	})
}

// memberSizes returns the decompressed size of each gzip member of raw.
func memberSizes(t *testing.T, raw []byte) []int {
	t.Helper()
	br := bytes.NewReader(raw)
	zr, err := gzip.NewReader(br)
	if err != nil {
		t.Fatal(err)
	}
	var sizes []int
	for {
		zr.Multistream(false)
		n, err := io.Copy(io.Discard, zr)
		if err != nil {
			t.Fatal(err)
		}
		sizes = append(sizes, int(n))
		if err := zr.Reset(br); err == io.EOF {
			return sizes
		} else if err != nil {
			t.Fatal(err)
		}
	}
}

func TestCompressedSpoolBadLevel(t *testing.T) {
	if _, err := spool.New(spool.Config{Dir: t.TempDir(), SaveSIP: true, ZipSIP: 10}); err == nil {
		t.Error("gzip level 10 accepted")
	}
}
