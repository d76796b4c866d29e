package discover

import (
	"os"
	"strings"
	"testing"
	"testing/fstest"

	"pbx-agent/sniffer/fixture"
)

// FuzzDiscover feeds arbitrary pjsip.conf/manager.conf/rtp.conf bytes:
// discovery must never panic and always return a Result.
func FuzzDiscover(f *testing.F) {
	f.Add("[t]\ntype=transport\nbind=127.0.0.1:5060\n", "[general]\nenabled=yes\n[u]\nsecret=x\nread=all\nwrite=all\n", "[general]\nrtpstart=10000\nrtpend=10200\n")
	f.Add("[t]\ntype=transport\nprotocol=tls\nbind=[::]\n", "[general]\nbindaddr=::\nport=99999\n", "[general]\nrtpend=1\n")
	f.Fuzz(func(t *testing.T, pjsip, manager, rtp string) {
		fsys := fstest.MapFS{
			"etc/asterisk/pjsip.conf":   {Data: []byte(pjsip)},
			"etc/asterisk/manager.conf": {Data: []byte(manager)},
			"etc/asterisk/rtp.conf":     {Data: []byte(rtp)},
		}
		res, _ := Discover(Options{FS: fsys, Interfaces: fakeInterfaces})
		if res == nil {
			t.Fatal("nil Result")
		}
		if res.RTPStart > res.RTPEnd {
			t.Fatalf("rtp range %d-%d", res.RTPStart, res.RTPEnd)
		}
	})
}

func FuzzParseHostPort(f *testing.F) {
	for _, s := range []string{"127.0.0.1:5060", "0.0.0.0", "[::]:5060", "[::1]", "::", "host:1", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, p, err := parseHostPort(s)
		if err == nil && (!a.IsValid() || p < 0 || p > 65535) {
			t.Fatalf("%q: %v %d", s, a, p)
		}
	})
}

func BenchmarkDiscover(b *testing.B) {
	root := fixture.Repo(b, "testdata", "discover", "fixture")
	fsys := os.DirFS(root)
	b.ReportAllocs()
	for b.Loop() {
		res, err := Discover(Options{FS: fsys, Interfaces: fakeInterfaces})
		if err != nil || !strings.HasPrefix(res.AMIUser, "monitor") {
			b.Fatal(err)
		}
	}
}
