package webui

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"pbx-agent/internal/cputime"
)

// BenchmarkDirSpoolOpen100Calls: the spool opens of a merged download of
// 100 CDRs (cdrRefs' limit) of one minute, as callFiles makes them: each
// call's SIP pcap and its RTP pcap, missing for half of them (then
// looked for as .pcap.gz too).
func BenchmarkDirSpoolOpen100Calls(b *testing.B) {
	d := DirSpool{Root: b.TempDir()}
	at := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	var files []SpoolFile
	for i := range 100 {
		for _, k := range []FileKind{KindSIP, KindRTP} {
			f := SpoolFile{Kind: k, CallDate: at, Basename: fmt.Sprintf("call%d", i)}
			files = append(files, f)
			if k == KindRTP && i%2 == 1 {
				continue
			}
			p, err := d.Path(f)
			if err != nil {
				b.Fatal(err)
			}
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				b.Fatal(err)
			}
			if err := os.WriteFile(p, []byte("PCAP"), 0o644); err != nil {
				b.Fatal(err)
			}
		}
	}
	ctx := context.Background()
	b.ReportAllocs()
	cpu0 := cputime.Process()
	for b.Loop() {
		for _, f := range files {
			if rc, err := d.Open(ctx, f); err == nil {
				rc.Close()
			}
		}
	}
	cputime.PerOp(b, cpu0)
}
