package webui

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image/png"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/gopacket/pcapgo"

	"pbx-agent/sniffer/capture"
	"pbx-agent/sniffer/fax"
	"pbx-agent/sniffer/fixture"
)

// faxCaptures are the project's real Asterisk fax recordings: SendFAX of
// sniffer/fax/testdata/sent.tif (2 pages) to ReceiveFAX, T.38 by
// re-INVITE and over G.711.
var faxCaptures = []struct{ file, mode string }{
	{"asterisk-fax-t38.pcap", fax.ModeT38},
	{"asterisk-fax-g711.pcap", fax.ModeG711},
}

// spoolWhole stores every frame of a capture as the call's RTP pcap (a
// recording holds that one call only; the test env's spool keeps just the
// packets of RTP streams).
func spoolWhole(t *testing.T, e *testEnv, id uint64, path string) {
	t.Helper()
	var basename, date string
	if err := e.db.QueryRow("SELECT n.fbasename, c.calldate FROM cdr c JOIN cdr_next n ON n.cdr_ID = c.ID WHERE c.ID = ?", id).Scan(&basename, &date); err != nil {
		t.Fatal(err)
	}
	d, err := time.Parse("2006-01-02 15:04:05.000", date)
	if err != nil {
		t.Fatal(err)
	}
	p, err := e.spool.Path(SpoolFile{Kind: KindRTP, CallDate: d, Basename: basename})
	if err != nil {
		t.Fatal(err)
	}
	src, err := capture.OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	os.MkdirAll(filepath.Dir(p), 0o755)
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := pcapgo.NewWriter(f)
	if err := w.WriteFileHeader(262144, src.LinkType()); err != nil {
		t.Fatal(err)
	}
	for {
		data, ci, err := src.ReadPacket()
		if err != nil {
			break
		}
		if err := w.WritePacket(ci, data); err != nil {
			t.Fatal(err)
		}
	}
}

// TestGetFax: the real T.38 and G.711 fax calls give the two sent pages
// through api.php getFax (JSON, TIFF, PNG), to a user with can_show_fax;
// a user without it gets 403.
func TestGetFax(t *testing.T) {
	var paths []string
	for _, c := range faxCaptures {
		paths = append(paths, fixture.Repo(t, "testdata", "pcap", c.file))
	}
	e := newEnvFrom(t, paths, func(o *Options) {
		o.Users = append(o.Users, User{Name: "nofax", Secret: "nofaxpw", Rights: CanCDR | CanPCAP | CanDownloadAudio})
	})
	if !fax.Built {
		// a build without spandsp: a clear 503, not a crash or an empty answer
		spoolWhole(t, e, 1, paths[0])
		status, body, _ := e.do(t, "GET", "/php/api.php?task=getFax&user=reader&password=readpw&params="+url.QueryEscape(`{"cdrId":1}`), "")
		if status != 503 || !bytes.Contains(body, []byte("cgo")) {
			t.Errorf("without spandsp: %d %s, want 503 naming cgo", status, body)
		}
		return
	}
	for i, c := range faxCaptures {
		id := uint64(i + 1)
		spoolWhole(t, e, id, paths[i])
		t.Run(c.mode, func(t *testing.T) {
			var payload int
			if err := e.db.QueryRow("SELECT COALESCE(payload, -1) FROM cdr WHERE ID = ?", id).Scan(&payload); err != nil {
				t.Fatal(err)
			}
			if want := map[string]int{fax.ModeT38: 1000, fax.ModeG711: 0}[c.mode]; payload != want {
				t.Errorf("cdr.payload = %d, want %d", payload, want)
			}
			api := func(user, pw, params string) string {
				return "/php/api.php?task=getFax&user=" + user + "&password=" + pw + "&params=" + url.QueryEscape(params)
			}
			status, body, _ := e.do(t, "GET", api("nofax", "nofaxpw", fmt.Sprintf(`{"cdrId":%d}`, id)), "")
			if status != 403 {
				t.Errorf("user without can_show_fax: status %d %s, want 403", status, body)
			}
			status, body, _ = e.do(t, "GET", api("reader", "readpw", fmt.Sprintf(`{"cdrId":%d}`, id)), "")
			if status != 200 {
				t.Fatalf("getFax: %d %s", status, body)
			}
			var j struct {
				Mode, Status, Tiff string
				Pages              int
				RemoteID           string `json:"remote_station_id"`
				PNG                []string
			}
			if err := json.Unmarshal(body, &j); err != nil {
				t.Fatal(err)
			}
			t.Logf("%s", body)
			var pages int
			var mode, st string
			if err := e.db.QueryRow("SELECT pages, mode, status FROM pbx_agent_fax WHERE cdr_ID = ?", id).Scan(&pages, &mode, &st); err != nil || pages != 2 || mode != c.mode || st != "OK" {
				t.Errorf("pbx_agent_fax: %d pages, mode %q, status %q, err %v", pages, mode, st, err)
			}
			if j.Mode != c.mode || j.Pages != 2 || j.Status != "OK" || j.RemoteID != "PBX-AGENT SEND" || len(j.PNG) != 2 {
				t.Errorf("getFax = %s; want mode %s, 2 pages, status OK, remote PBX-AGENT SEND", body, c.mode)
			}
			status, tiff, hdr := e.do(t, "GET", j.Tiff+"&user=reader&password=readpw", "")
			if status != 200 || hdr.Get("Content-Type") != "image/tiff" {
				t.Fatalf("tiff: %d %s", status, hdr.Get("Content-Type"))
			}
			file := filepath.Join(t.TempDir(), "fax.tif")
			os.WriteFile(file, tiff, 0o644)
			if n, err := fax.CountPages(file); n != 2 || err != nil {
				t.Errorf("served TIFF: %d pages, %v", n, err)
			}
			for p, link := range j.PNG {
				status, b, hdr := e.do(t, "GET", link+"&user=reader&password=readpw", "")
				if status != 200 || hdr.Get("Content-Type") != "image/png" {
					t.Fatalf("png %d: %d %s", p+1, status, b)
				}
				img, err := png.Decode(bytes.NewReader(b))
				if err != nil {
					t.Fatal(err)
				}
				pg, info, err := fax.ReadPage(file, p)
				if err != nil {
					t.Fatal(err)
				}
				got := img.Bounds()
				if got.Dx() != info.Width || got.Dy()%info.Rows != 0 {
					t.Fatalf("png %d is %v for a %d × %d page", p+1, got, info.Width, info.Rows)
				}
				rep, diff := got.Dy()/info.Rows, 0
				for y := range got.Dy() {
					for x := range got.Dx() {
						r, _, _, _ := img.At(x, y).RGBA()
						if (r < 0x8000) != (pg.Pix[(y/rep)*pg.Stride+x] < 128) {
							diff++
						}
					}
				}
				if diff != 0 {
					t.Errorf("png %d: %d pixels differ from the TIFF page", p+1, diff)
				}
			}
			status, _, _ = e.do(t, "GET", api("reader", "readpw", fmt.Sprintf(`{"cdrId":%d,"format":"png","page":3}`, id)), "")
			if status != 404 {
				t.Errorf("page 3 of 2: status %d, want 404", status)
			}
			checkPreviewTurns(t, e, j.PNG[0]+"&user=reader&password=readpw")
		})
	}
}

// checkPreviewTurns: a page's preview waits for a decoder's turn (a page
// can hold ≈ 240 MB of images while it is made): with every turn taken
// the request gets no image before it gives up; with one free it does.
func checkPreviewTurns(t *testing.T, e *testEnv, link string) {
	t.Helper()
	for range faxDecoders {
		e.h.faxes.sem <- struct{}{}
	}
	client := &http.Client{Timeout: 300 * time.Millisecond}
	if resp, err := client.Get(e.srv.URL + link); err == nil {
		resp.Body.Close()
		t.Errorf("preview with every decoder's turn taken: %s, want no answer until one is free", resp.Status)
	}
	<-e.h.faxes.sem
	status, _, hdr := e.do(t, "GET", link, "")
	for range faxDecoders - 1 {
		<-e.h.faxes.sem
	}
	if status != 200 || hdr.Get("Content-Type") != "image/png" {
		t.Errorf("preview with a turn free: %d %s", status, hdr.Get("Content-Type"))
	}
}

// TestUsersFileCanShowFax: read call/cdr gives can_show_fax, users_file's
// can_show_fax = no takes it away and = yes gives it; a bad value is an
// error at its line.
func TestUsersFileCanShowFax(t *testing.T) {
	users, err := loadUsers(t, "[reader]\nsecret = pw\nread = cdr\n\n[nofax]\nsecret = pw\nread = cdr\ncan_show_fax = no\n\n[faxonly]\nsecret = pw\nread = system\ncan_show_fax = yes\n")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{"reader": true, "nofax": false, "faxonly": true}
	for _, u := range users {
		if got := u.Rights.Has(CanShowFax); got != want[u.Name] {
			t.Errorf("%s: can_show_fax %v, want %v (rights %v)", u.Name, got, want[u.Name], u.Rights.Names())
		}
		if u.Name == "faxonly" && u.Rights.Has(CanCDR) {
			t.Errorf("faxonly got can_cdr")
		}
	}
	if _, err := loadUsers(t, "[x]\nsecret = pw\ncan_show_fax = maybe\n"); err == nil || !strings.Contains(err.Error(), "users.conf:3") {
		t.Errorf("can_show_fax = maybe: err %v, want an error at users.conf:3", err)
	}
}

// cancellingSpool serves the fax capture as a call's RTP pcap and cancels
// the request as it does (a client that hangs up while its fax is decoded).
type cancellingSpool struct {
	path   string
	cancel context.CancelFunc
}

func (s *cancellingSpool) Open(_ context.Context, f SpoolFile) (io.ReadCloser, error) {
	if f.Kind != KindRTP {
		return nil, fs.ErrNotExist
	}
	defer s.cancel()
	return os.Open(s.path)
}

// TestFaxCancelledLeavesNoFiles: a decode cancelled by its request keeps
// no directory under the cache's base (the entry is dropped, so eviction
// would never remove it).
func TestFaxCancelledLeavesNoFiles(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sp := &cancellingSpool{path: fixture.Repo(t, "testdata", "pcap", "asterisk-fax-t38.pcap"), cancel: cancel}
	h := &Handler{o: Options{Spool: sp}, log: slog.New(slog.DiscardHandler)}
	h.faxes.base = t.TempDir()
	if _, err := h.faxes.get(ctx, h, cdrRef{ID: 7, Basename: "x"}); !errors.Is(err, context.Canceled) {
		t.Fatalf("get = %v, want context.Canceled", err)
	}
	left, err := os.ReadDir(h.faxes.base)
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 0 {
		t.Errorf("%d entries left under the fax cache's base (%s …), want none", len(left), left[0].Name())
	}
	if len(h.faxes.entries) != 0 {
		t.Errorf("%d cache entries after a cancelled decode, want 0", len(h.faxes.entries))
	}
}

// blockingSpool serves the fax capture as a call's RTP pcap; its first
// Open waits for proceed, then cancels the first request.
type blockingSpool struct {
	path            string
	opened, proceed chan struct{}
	cancel          context.CancelFunc
	n               atomic.Int32
}

func (s *blockingSpool) Open(_ context.Context, f SpoolFile) (io.ReadCloser, error) {
	if f.Kind != KindRTP {
		return nil, fs.ErrNotExist
	}
	if s.n.Add(1) == 1 {
		close(s.opened)
		<-s.proceed
		s.cancel()
	}
	return os.Open(s.path)
}

// TestFaxWaiterOutlivesCancelledDecode: a request waiting for the decode
// another request started gets the fax, not that request's cancellation.
func TestFaxWaiterOutlivesCancelledDecode(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sp := &blockingSpool{path: fixture.Repo(t, "testdata", "pcap", "asterisk-fax-t38.pcap"),
		opened: make(chan struct{}), proceed: make(chan struct{}), cancel: cancel}
	h := &Handler{o: Options{Spool: sp}, log: slog.New(slog.DiscardHandler)}
	h.faxes.base = t.TempDir()
	ref := cdrRef{ID: 7, Basename: "x"}
	first := make(chan error, 1)
	go func() { _, err := h.faxes.get(ctx, h, ref); first <- err }()
	<-sp.opened
	second := make(chan error, 1)
	go func() { _, err := h.faxes.get(context.Background(), h, ref); second <- err }()
	time.Sleep(50 * time.Millisecond) // the second request waits for the first's decode
	close(sp.proceed)
	if err := <-first; !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled request: %v, want context.Canceled", err)
	}
	if err := <-second; errors.Is(err, context.Canceled) || (fax.Built && err != nil) {
		t.Errorf("waiting request: %v, want the fax", err)
	}
}
