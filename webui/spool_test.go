package webui

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
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

// TestSpoolSymlinkRefused: a call's spool files replaced by symlinks to
// the same files outside the spool (as a symlink to /etc/shadow would be)
// are served by no web download: the merged pcap (pcap.php, getPCAP), the
// SIP pcap alone, the SIP history (pcap2text and the console's text), the recording (WAV from
// an AUDIO symlink, Ogg) and the fax decoder each answer exactly what they
// answer when the files are missing, so the answer does not tell a
// symlink from a missing file either. Each state gets a new handler: the
// fax decoder caches its results.
func TestSpoolSymlinkRefused(t *testing.T) {
	e := newEnv(t, nil)
	ids := sqlIDs(t, e, "SELECT c.ID FROM cdr c JOIN cdr_next n ON n.cdr_ID = c.ID WHERE c.a_received > 0 ORDER BY c.ID LIMIT 1")
	if len(ids) == 0 {
		t.Fatal("no CDR with RTP")
	}
	id := ids[0]
	var base, date string
	if err := e.db.QueryRow("SELECT n.fbasename, c.calldate FROM cdr c JOIN cdr_next n ON n.cdr_ID = c.ID WHERE c.ID = ?", id).Scan(&base, &date); err != nil {
		t.Fatal(err)
	}
	at, err := time.Parse("2006-01-02 15:04:05.000", date)
	if err != nil {
		t.Fatal(err)
	}
	api := func(task, params string) string {
		return withCreds("/php/api.php?task="+task+"&params="+url.QueryEscape(params), "admin", "adminpw")
	}
	paths := []string{
		withCreds("/php/pcap.php?id="+id, "admin", "adminpw"),
		withCreds("/php/pcap.php?disable_rtp=1&id="+id, "admin", "adminpw"),
		api("getPCAP", `{"callId":`+strconv.Quote(base)+`}`),
		withCreds("/php/pcap2text.php?action=brief&id="+id, "admin", "adminpw"),
		withCreds("/console/api/sip.txt?id="+id, "admin", "adminpw"),
		api("getVoiceRecording", `{"cdrId":`+id+`}`),
		api("getVoiceRecording", `{"cdrId":`+id+`,"ogg":true}`),
		api("getFax", `{"cdrId":`+id+`}`),
	}
	type answer struct {
		status int
		body   string
	}
	fetch := func() []answer {
		srv := httptest.NewServer(New(e.h.o))
		defer srv.Close()
		out := make([]answer, len(paths))
		for i, p := range paths {
			st, b, _ := send(t, srv, "GET", p, "")
			out[i] = answer{st, string(b)}
		}
		return out
	}
	present := fetch()
	for i, a := range present[:6] {
		if a.status != 200 {
			t.Fatalf("%s with the files in the spool: %d %.200s", paths[i], a.status, a.body)
		}
	}

	// The files move out of the spool; symlinks take their names, and an
	// AUDIO one points at the call's WAV.
	outside := t.TempDir()
	wav, err := e.spool.Path(SpoolFile{Kind: KindAudio, CallDate: at, Basename: base})
	if err != nil {
		t.Fatal(err)
	}
	links := []string{wav}
	if err := os.WriteFile(filepath.Join(outside, "audio"), []byte(present[5].body), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, k := range []FileKind{KindSIP, KindRTP} {
		p, err := e.spool.Path(SpoolFile{Kind: k, CallDate: at, Basename: base})
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(p, filepath.Join(outside, string(k))); err != nil {
			t.Fatal(err)
		}
		links = append(links, p)
	}
	if err := os.MkdirAll(filepath.Dir(wav), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, p := range links {
		if err := os.Symlink(filepath.Join(outside, filepath.Base(filepath.Dir(p))), p); err != nil {
			t.Fatal(err)
		}
	}
	linked := fetch()
	for _, p := range links {
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
	}
	missing := fetch()
	for i, p := range paths {
		if missing[i] == present[i] {
			t.Errorf("%s: the same answer with the files and without: %d %.200q", p, missing[i].status, missing[i].body)
		}
		if linked[i] != missing[i] {
			t.Errorf("%s through symlinks out of the spool: %d %.200q; want what a missing file gets: %d %.200q",
				p, linked[i].status, linked[i].body, missing[i].status, missing[i].body)
		}
	}
}
