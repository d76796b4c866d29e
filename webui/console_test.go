package webui

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"maps"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"pbx-agent/internal/browsertest"
	"pbx-agent/sniffer/codec"
	"pbx-agent/sniffer/fixture"
	"pbx-agent/webui/cdrquery"
)

// consoleUsers adds users that lack one right each to the test users.
func consoleUsers(o *Options) {
	all := CanCDR | CanPlayAudio | CanDownloadAudio | CanListenActiveCall | CanPCAP | CanActiveCalls
	o.Users = append(o.Users,
		User{Name: "nopcap", Secret: "nopcappw", Rights: all &^ CanPCAP},
		User{Name: "noaudio", Secret: "noaudiopw", Rights: all &^ CanDownloadAudio},
		User{Name: "viewer", Secret: "viewerpw", Rights: CanCDR},
	)
}

// sqlIDs runs a query of CDR ids.
func sqlIDs(t *testing.T, e *testEnv, q string, args ...any) []string {
	t.Helper()
	rs, err := e.db.Query(q, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	var out []string
	for rs.Next() {
		var id string
		if err := rs.Scan(&id); err != nil {
			t.Fatal(err)
		}
		out = append(out, id)
	}
	return out
}

// numberPart picks a part of a stored caller or called number that some
// CDRs have and others have not, so the search has something to tell apart.
func numberPart(t *testing.T, e *testEnv) (string, []string) {
	t.Helper()
	total := len(sqlIDs(t, e, "SELECT ID FROM cdr"))
	nums := sqlIDs(t, e, "SELECT DISTINCT caller FROM cdr UNION SELECT DISTINCT called FROM cdr")
	for _, n := range nums {
		for l := 3; l <= len(n); l++ {
			for i := 0; i+l <= len(n); i++ {
				part := n[i : i+l]
				if strings.ContainsAny(part, "%_\\") {
					continue
				}
				ids := sqlIDs(t, e, "SELECT ID FROM cdr WHERE caller LIKE ? OR called LIKE ? ORDER BY calldate DESC, ID DESC", "%"+part+"%", "%"+part+"%")
				if len(ids) > 0 && len(ids) < total {
					return part, ids
				}
			}
		}
	}
	t.Fatalf("no number part tells the %d CDRs apart (numbers %v)", total, nums)
	return "", nil
}

// TestConsoleHistorySearch: headless Chromium logs in on the calls page
// (MariaDB filled by replaying the repo's captures), searches a part of a
// number from a shareable URL and finds exactly the CDRs SQL finds; a
// column header sorts as SQL sorts; screenshots at 1280 and 390 px.
func TestConsoleHistorySearch(t *testing.T) {
	ctx, cancel := browsertest.New(t, 90*time.Second)
	defer cancel()
	e := newEnv(t, nil)
	part, want := numberPart(t, e)
	page := e.srv.URL + "/console/calls.html?" + url.Values{"fdatefrom": {"2000-01-01T00:00:00"}, "fdateto": {"2100-01-01T00:00:00"}, "number": {part}}.Encode()
	err := chromedp.Do(ctx,
		browsertest.Login(page, "admin", "adminpw"),
	)
	if err != nil {
		t.Fatalf("login: %v", err)
	}
	ids := consoleIDs(t, ctx)
	if !slices.Equal(ids, want) {
		t.Fatalf("number %q: page shows CDRs %v, SQL finds %v", part, ids, want)
	}
	t.Logf("number part %q: %d of the CDRs, as SQL", part, len(ids))
	if v, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById("f-number").value`)); v != part {
		t.Errorf("number field shows %q, want %q (URL → form)", v, part)
	}
	browsertest.Screenshots(t, ctx, "console-calls")

	// Sort by caller (header link): the order SQL gives.
	err = chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#calls th[data-sort="caller"] a`)), chromedp.WaitVisible(chromedp.CSS(`#calls th[aria-sort]`)))
	if err != nil {
		t.Fatalf("sort: %v", err)
	}
	ids = consoleIDs(t, ctx)
	want = sqlIDs(t, e, "SELECT ID FROM cdr WHERE caller LIKE ? OR called LIKE ? ORDER BY caller DESC, calldate DESC, ID DESC", "%"+part+"%", "%"+part+"%")
	if !slices.Equal(ids, want) {
		t.Fatalf("sorted by caller: page %v, SQL %v", ids, want)
	}
	loc, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`location.search`))
	if v, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById("f-order").value`)); v != "" {
		t.Errorf("order list shows %q for caller descending (not one of its entries)", v)
	}
	if !strings.Contains(loc, "sort=caller") || !strings.Contains(loc, "number="+part) {
		t.Errorf("URL %q does not keep the filter and the order", loc)
	}
}

// TestConsoleHistoryOrderOnPhone: at 390 px the header row is hidden; the
// order list sorts (worst MOS first) as SQL does.
func TestConsoleHistoryOrderOnPhone(t *testing.T) {
	ctx, cancel := browsertest.New(t, 90*time.Second, chromedp.WindowSize(390, 844))
	defer cancel()
	e := newEnv(t, nil)
	err := chromedp.Do(ctx,
		browsertest.Login(e.srv.URL+"/console/calls.html?fdatefrom=2000-01-01T00:00:00&fdateto=2100-01-01T00:00:00", "admin", "adminpw"),
		chromedp.WaitVisible(chromedp.CSS("#calls tbody tr")),
		chromedp.SetValue(chromedp.CSS("#f-order"), "mos_min_mult10:ASC"),
		chromedp.Click(chromedp.CSS("#search")),
		chromedp.WaitVisible(chromedp.CSS(`#calls tbody tr`)),
	)
	if err != nil {
		t.Fatal(err)
	}
	// The page updates the URL when the new listing has arrived, after the
	// old rows were already visible: wait for it.
	var loc string
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		loc, _ = chromedp.Run(ctx, chromedp.Evaluate[string](`location.search`))
		if strings.Contains(loc, "sort=mos_min_mult10") || time.Now().After(deadline) {
			break
		}
	}
	if !strings.Contains(loc, "sort=mos_min_mult10") {
		t.Fatalf("URL after choosing the order: %q", loc)
	}
	ids := consoleIDs(t, ctx)
	want := sqlIDs(t, e, "SELECT ID FROM cdr ORDER BY mos_min_mult10 ASC, calldate DESC, ID DESC")
	if !slices.Equal(ids, want) {
		t.Fatalf("worst MOS first: page %v, SQL %v", ids, want)
	}
}

// consoleIDs waits for the calls page to load and returns its CDR ids.
func consoleIDs(t *testing.T, ctx context.Context) []string {
	t.Helper()
	ids, err := chromedp.Run(ctx, chromedp.Poll[[]string](`window.__calls && window.__calls.loaded ? window.__calls.ids : null`, chromedp.WithPollingTimeout(20*time.Second)))
	if err != nil {
		t.Fatalf("calls page: %v", err)
	}
	return ids
}

// TestConsoleCSV: the export holds the LISTING columns and the rows SQL
// finds for the same filter.
func TestConsoleCSV(t *testing.T) {
	e := newEnv(t, nil)
	part, want := numberPart(t, e)
	cookie := e.login(t, "admin", "adminpw")
	q := url.Values{"fdatefrom": {"2000-01-01"}, "fdateto": {"2100-01-01"}, "fcaller": {"%" + part + "%"}, "fcallerd_type": {"0"}}
	st, b, hdr := e.do(t, "GET", "/console/api/calls.csv?"+q.Encode(), "", "Cookie", cookie)
	if st != 200 {
		t.Fatalf("csv: %d %s", st, b)
	}
	if !strings.HasPrefix(hdr.Get("Content-Type"), "text/csv") || !strings.Contains(hdr.Get("Content-Disposition"), "attachment") {
		t.Errorf("csv headers %v", hdr)
	}
	recs, err := csv.NewReader(strings.NewReader(string(b))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(recs[0], cdrquery.Columns()) {
		t.Errorf("header %v", recs[0])
	}
	var got []string
	for _, r := range recs[1:] {
		got = append(got, r[0])
	}
	if !slices.Equal(got, want) {
		t.Fatalf("csv ids %v, SQL %v", got, want)
	}
	// Without a date range: refused as sql.php refuses it.
	if st, b, _ := e.do(t, "GET", "/console/api/calls.csv?fcaller=1", "", "Cookie", cookie); st != 400 {
		t.Errorf("csv without dates: %d %s", st, b)
	}
}

func TestConsoleCSVCell(t *testing.T) {
	for in, want := range map[string]string{"+442071234567": "+442071234567", "=1+1": "'=1+1", "@SUM(A1)": "'@SUM(A1)",
		"-": "'-", "-5": "-5", "+x": "'+x", "1001": "1001", "": ""} {
		if got := csvCell(in); got != want {
			t.Errorf("csvCell(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestConsoleDownloadsNeedRights: each download of the detail page (merged
// pcap and SIP text: can_pcap; WAV and Ogg: can_download_audio) answers 403
// to a user without its right and 200 to one with it; the call's JSON
// leaves the SIP text out without can_pcap.
func TestConsoleDownloadsNeedRights(t *testing.T) {
	e := newEnv(t, consoleUsers)
	id := sqlIDs(t, e, "SELECT c.ID FROM cdr c JOIN cdr_next n ON n.cdr_ID = c.ID WHERE c.a_received > 0 ORDER BY c.ID LIMIT 1")
	if len(id) == 0 {
		t.Fatal("no CDR with RTP")
	}
	audio := "/php/api.php?task=getVoiceRecording&params=" + url.QueryEscape(`{"cdrId":`+id[0]+`}`)
	ogg := "/php/api.php?task=getVoiceRecording&params=" + url.QueryEscape(`{"cdrId":`+id[0]+`,"ogg":true}`)
	oggOK := 200
	if !codec.Built {
		oggOK = 503 // no libopus: the page shows no Ogg link
	}
	for _, c := range []struct {
		path, deny string
		ok         int // for admin
	}{
		{"/php/pcap.php?id=" + id[0], "nopcap", 200},
		{"/console/api/sip.txt?id=" + id[0], "nopcap", 200},
		{audio, "noaudio", 200},
		{ogg, "noaudio", oggOK},
	} {
		for _, u := range []struct {
			name, pass string
			want       int
		}{{c.deny, c.deny + "pw", 403}, {"viewer", "viewerpw", 403}, {"admin", "adminpw", c.ok}} {
			st, b, _ := e.do(t, "GET", c.path, "", "Cookie", e.login(t, u.name, u.pass))
			if st != u.want {
				t.Errorf("%s as %s: %d, want %d (%.120s)", c.path, u.name, st, u.want, b)
			}
		}
	}
	for _, u := range []struct {
		name, pass string
		text       bool
	}{{"viewer", "viewerpw", false}, {"admin", "adminpw", true}} {
		st, b, _ := e.do(t, "GET", "/console/api/call?id="+id[0], "", "Cookie", e.login(t, u.name, u.pass))
		if st != 200 {
			t.Fatalf("call as %s: %d %s", u.name, st, b)
		}
		var rep struct {
			SIP []struct {
				Text *string `json:"text"`
			} `json:"sip"`
			Can map[string]bool `json:"can"`
		}
		if err := json.Unmarshal(b, &rep); err != nil {
			t.Fatal(err)
		}
		if len(rep.SIP) == 0 {
			t.Fatalf("call %s as %s: no SIP message", id[0], u.name)
		}
		for _, m := range rep.SIP {
			if (m.Text != nil) != u.text {
				t.Fatalf("as %s: message text present = %v, want %v", u.name, m.Text != nil, u.text)
			}
		}
		if rep.Can["pcap"] != u.text {
			t.Errorf("as %s: can.pcap = %v", u.name, rep.Can["pcap"])
		}
	}
	// Not logged in: 401, never data.
	if st, _, _ := e.do(t, "GET", "/console/api/call?id="+id[0], ""); st != 401 {
		t.Errorf("call without a session: %d", st)
	}
}

var inlineHandler = regexp.MustCompile(`\son[a-z]+\s*=`)

// TestConsolePagesCSP: the pages allow no inline script and no other origin.
func TestConsolePagesCSP(t *testing.T) {
	e := newEnv(t, nil)
	for _, p := range []string{"calls.html", "call.html", "overview.html", "calls.js", "call.js", "overview.js", "common.js", "console.css", "uPlot.iife.min.js", "uPlot.min.css"} {
		st, b, hdr := e.do(t, "GET", "/console/"+p, "")
		if st != 200 || len(b) == 0 {
			t.Fatalf("%s: %d", p, st)
		}
		csp := hdr.Get("Content-Security-Policy")
		if !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") {
			t.Errorf("%s: CSP %q", p, csp)
		}
		if strings.HasSuffix(p, ".html") && (strings.Contains(string(b), "<script>") || inlineHandler.Match(b)) {
			t.Errorf("%s has inline script", p)
		}
	}
	for _, p := range []string{"nothing.html", "..%2fwebui.go", "console.go"} {
		if st, _, _ := e.do(t, "GET", "/console/"+p, ""); st != 404 {
			t.Errorf("/console/%s: %d, want 404", p, st)
		}
	}
}

// TestConsoleBlindTransfer: the real Asterisk blind-transfer call
// (../shared/fixtures/asterisk), its CDRs written with the correlation of
// the AMI session Asterisk sent during it, as the daemon writes them. The
// three legs (Alice↔Asterisk, Asterisk↔Bob, Asterisk↔Carol) share one
// Linkedid in cdr_asterisk; the detail page groups them by it, names each
// leg's Asterisk channel and hang-up cause, and draws one ladder with every
// leg's messages; clicking the REFER arrow shows that message's text.
// Without the stored correlation the page falls back to caller and time.
func TestConsoleBlindTransfer(t *testing.T) {
	pcap := fixture.Shared(t, "asterisk", "call-blind-transfer.pcap")
	amiRaw := fixture.Shared(t, "asterisk", "ami-call-blind-transfer.raw")
	ctx, cancel := browsertest.New(t, 90*time.Second)
	defer cancel()
	e := newEnvWith(t, envSpec{paths: []string{pcap}, ami: amiRaw, saveGraph: true}, nil)
	legs := map[string]bool{"26f2c4db2e2e9454": true, "4c14f56b-0636-4ae0-8979-4b3c8a93188f": true, "6b2038a6-6cab-40eb-9e9f-5d2d5bf4c960": true}
	// The channel of each leg (the fixture's README).
	channels := map[string]string{"26f2c4db2e2e9454": "PJSIP/1001-00000000", "4c14f56b-0636-4ae0-8979-4b3c8a93188f": "PJSIP/1002-00000001",
		"6b2038a6-6cab-40eb-9e9f-5d2d5bf4c960": "PJSIP/1003-00000002"}
	const linkedid = "1795560694.0"
	alice := sqlIDs(t, e, "SELECT cdr_ID FROM cdr_next WHERE fbasename = ?", "26f2c4db2e2e9454")
	if len(alice) != 1 {
		t.Fatalf("Alice's leg: CDRs %v", alice)
	}
	if got := sqlIDs(t, e, "SELECT DISTINCT linkedid FROM cdr_asterisk"); !slices.Equal(got, []string{linkedid}) {
		t.Fatalf("cdr_asterisk Linkedids %v, want only %s", got, linkedid)
	}
	if n := len(sqlIDs(t, e, "SELECT cdr_ID FROM cdr_asterisk WHERE linkedid = ?", linkedid)); n != 3 {
		t.Fatalf("%d CDRs under Linkedid %s, want 3", n, linkedid)
	}
	err := chromedp.Do(ctx,
		browsertest.Login(e.srv.URL+"/console/call.html?id="+alice[0], "admin", "adminpw"),
		chromedp.WaitVisible(chromedp.CSS("#ladder g.msg")),
	)
	if err != nil {
		t.Fatalf("detail page: %v", err)
	}
	callIDs, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll("#legs tbody tr td:nth-child(4)")].map(td => td.textContent)`))
	if err != nil {
		t.Fatal(err)
	}
	if len(callIDs) != 3 {
		t.Fatalf("legs shown: %v, want 3", callIDs)
	}
	for _, c := range callIDs {
		if !legs[c] {
			t.Errorf("leg %q is not one of the transfer's", c)
		}
	}
	type legView struct {
		Linkedid string   `json:"linkedid"`
		Legs     []string `json:"legs"`
		Channels []string `json:"channels"`
	}
	lv, err := chromedp.Run(ctx, chromedp.Evaluate[legView](`({linkedid: window.__call.linkedid, legs: window.__call.legs, channels: window.__call.channels})`))
	if err != nil {
		t.Fatal(err)
	}
	if lv.Linkedid != linkedid || len(lv.Channels) != 3 {
		t.Fatalf("page: Linkedid %q, channels %v; want %s and 3 channels", lv.Linkedid, lv.Channels, linkedid)
	}
	for i, c := range callIDs {
		if lv.Channels[i] != channels[c] {
			t.Errorf("leg %s: channel %q, want %q", c, lv.Channels[i], channels[c])
		}
	}
	causes, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll("#legs tbody tr td:nth-child(8)")].map(td => td.textContent)`))
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range causes {
		if !strings.HasPrefix(c, "16 Normal Clearing") {
			t.Errorf("leg %s: Asterisk hang-up cause %q, want 16 Normal Clearing", callIDs[i], c)
		}
	}
	if note, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#legsnote"))); !strings.Contains(note, "Linkedid "+linkedid) {
		t.Errorf("legs note %q", note)
	}
	t.Logf("legs under Linkedid %s: %v, channels %v, causes %v", linkedid, callIDs, lv.Channels, causes)
	// Quality over time of Alice's leg: one chart line per stream (Asterisk
	// changed SSRC after the transfer: 3 streams), no loss
	// (the real call lost nothing), as long as the call's media.
	lost, err := chromedp.Run(ctx, chromedp.Poll[[][]*float64](`window.__call.quality && window.__call.quality.charts.lost ? window.__call.quality.charts.lost.data : null`, chromedp.WithPollingTimeout(10*time.Second)))
	if err != nil {
		t.Fatal(err)
	}
	nStreams := len(sqlIDs(t, e, "SELECT `index` FROM cdr_rtp WHERE cdr_ID = ?", alice[0]))
	if len(lost) != nStreams+1 || len(lost[0]) < 10 {
		t.Errorf("loss chart of Alice's leg: %d series over %d seconds, want its %d streams over the 11 s of talk", len(lost)-1, len(lost[0]), nStreams)
	}
	for _, ys := range lost[1:] {
		for i, y := range ys {
			if y != nil && *y != 0 {
				t.Errorf("loss chart: %v packets lost at %.0f s in a call that lost none", *y, *lost[0][i])
			}
		}
	}
	labels, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll("#ladder g.msg")].map(g => g.getAttribute("aria-label"))`))
	if err != nil {
		t.Fatal(err)
	}
	refer := slices.IndexFunc(labels, func(s string) bool { return strings.HasPrefix(s, "REFER ") })
	if refer < 0 {
		t.Fatalf("no REFER arrow in the ladder: %v", labels)
	}
	t.Logf("ladder: %d messages over %d legs", len(labels), len(callIDs))
	err = chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#ladder g.msg[data-i="`+strconv.Itoa(refer)+`"] line`)))
	if err != nil {
		t.Fatalf("click REFER: %v", err)
	}
	text, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#msgtext")))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text, "REFER sip:") || !strings.Contains(text, "Refer-To: sip:1003@127.0.0.1") {
		t.Fatalf("message text after clicking REFER:\n%s", text)
	}
	// Keyboard: Tab to the first arrow, Enter shows the INVITE.
	err = chromedp.Do(ctx, chromedp.Focus(chromedp.CSS(`#ladder g.msg[data-i="0"]`)), chromedp.KeyEvent("\r"))
	if err != nil {
		t.Fatal(err)
	}
	if text, _ = chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#msgtext"))); !strings.Contains(text, "INVITE sip:") {
		t.Errorf("Enter on the first arrow shows:\n%.200s", text)
	}
	// The recording: the WAV decoded in the page (OfflineAudioContext), as
	// long as the call, stereo, not silent, drawn on the waveform.
	type wave struct {
		Duration float64 `json:"duration"`
		Channels int     `json:"channels"`
		Peak     float64 `json:"peak"`
		Error    string  `json:"error"`
	}
	wv, err := chromedp.Run(ctx, chromedp.Poll[wave](`window.__call.wave || null`, chromedp.WithPollingTimeout(20*time.Second)))
	if err != nil {
		t.Fatalf("recording: %v", err)
	}
	var dur float64
	if err := e.db.QueryRow("SELECT connect_duration FROM cdr WHERE ID = ?", alice[0]).Scan(&dur); err != nil {
		t.Fatal(err)
	}
	t.Logf("recording: %+v (talk time %.3f s)", wv, dur)
	if wv.Error != "" || wv.Channels != 2 || wv.Peak < 0.01 || wv.Duration < dur-1 || wv.Duration > dur+1 {
		t.Errorf("recording decoded in the page: %+v, want stereo, not silent, the talk time %.1f s ± 1 s", wv, dur)
	}
	checkDownloadLinks(t, e, ctx)
	browsertest.Screenshots(t, ctx, "console-call-blind-transfer")

	// Without the stored correlation (a database VoIPmonitor's sniffer
	// filled): the same three legs by caller and time, no Linkedid.
	if _, err := e.db.Exec("DELETE FROM cdr_asterisk"); err != nil {
		t.Fatal(err)
	}
	st, b, _ := e.do(t, "GET", "/console/api/call?id="+alice[0], "", "Cookie", e.login(t, "admin", "adminpw"))
	var rep struct {
		Linkedid string `json:"linkedid"`
		Legs     []struct {
			CallID string `json:"callid"`
		} `json:"legs"`
	}
	if err := json.Unmarshal(b, &rep); st != 200 || err != nil || rep.Linkedid != "" || len(rep.Legs) != 3 {
		t.Errorf("fallback grouping: %d %v, Linkedid %q, %d legs; want 3 legs by caller and time", st, err, rep.Linkedid, len(rep.Legs))
	}
}

// TestConsoleOverview: the overview page's totals (calls, answered, ASR)
// over the last 6 hours are SQL's, its chart of calls in progress draws, per
// sensor, the calls SQL finds overlapping each 6-minute step, and its
// registration tables list every AOR of register_state and register_failed;
// screenshots.
func TestConsoleOverview(t *testing.T) {
	ctx, cancel := browsertest.New(t, 90*time.Second)
	defer cancel()
	var last time.Time
	e := newEnv(t, func(o *Options) {
		var s string
		if err := o.DB.QueryRow("SELECT MAX(calldate) FROM cdr").Scan(&s); err != nil {
			t.Fatal(err)
		}
		var err error
		if last, err = time.Parse("2006-01-02 15:04:05.000", s); err != nil {
			t.Fatal(err)
		}
		o.Now = func() time.Time { return last.Add(time.Hour) }
	})
	// Registrations as agent/cdr writes them: AOR 2001 registered then
	// expired (the page shows the last state), 2002 failed 3 + 2 times,
	// the last time with a 403 and a Warning (the page shows that reason).
	const failReason = `403 Forbidden; Warning: 399 pbx "bad password"`
	at := last.Add(-time.Minute)
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{"INSERT INTO register_state (id_sensor, created_at, sipcallerip, sipcalledip, to_num, to_domain, state, expires) VALUES (1, ?, 167772161, 167772162, '2001', 'pbx.test', 1, 300)", []any{sqlTimeUTC(at.Add(-time.Minute))}},
		{"INSERT INTO register_state (id_sensor, created_at, sipcallerip, sipcalledip, to_num, to_domain, state, expires) VALUES (1, ?, 167772161, 167772162, '2001', 'pbx.test', 5, 0)", []any{sqlTimeUTC(at)}},
		{"INSERT INTO register_failed (id_sensor, created_at, sipcallerip, sipcalledip, to_num, to_domain, counter, reason) VALUES (1, ?, 167772163, 167772162, '2002', 'pbx.test', 3, '401 Unauthorized')", []any{sqlTimeUTC(at.Add(-time.Minute))}},
		{"INSERT INTO register_failed (id_sensor, created_at, sipcallerip, sipcalledip, to_num, to_domain, counter, reason) VALUES (1, ?, 167772164, 167772162, '2002', 'pbx.test', 2, ?)", []any{sqlTimeUTC(at), failReason}},
		// Two overlapping calls of a second sensor, over several steps.
		{"INSERT INTO cdr (calldate, callend, id_sensor) VALUES (?, ?, 2), (?, ?, 2)", []any{sqlTimeUTC(last.Add(-2 * time.Hour)),
			sqlTimeUTC(last.Add(-90 * time.Minute)), sqlTimeUTC(last.Add(-110 * time.Minute)), sqlTimeUTC(last.Add(-100 * time.Minute))}},
	} {
		if _, err := e.db.Exec(q.sql, q.args...); err != nil {
			t.Fatal(err)
		}
	}
	var calls, answered, aors, failedAORs int
	if err := e.db.QueryRow("SELECT COUNT(*), SUM(connect_duration IS NOT NULL) FROM cdr WHERE calldate >= ?",
		sqlTimeUTC(last.Add(time.Hour).Truncate(time.Minute).Add(time.Minute-6*time.Hour))).Scan(&calls, &answered); err != nil {
		t.Fatal(err)
	}
	if err := e.db.QueryRow("SELECT COUNT(DISTINCT to_num, to_domain, id_sensor) FROM register_state").Scan(&aors); err != nil {
		t.Fatal(err)
	}
	if err := e.db.QueryRow("SELECT COUNT(DISTINCT to_num, to_domain, id_sensor) FROM register_failed").Scan(&failedAORs); err != nil {
		t.Fatal(err)
	}
	err := chromedp.Do(ctx,
		browsertest.Login(e.srv.URL+"/console/overview.html?hours=6", "admin", "adminpw"),
	)
	if err != nil {
		t.Fatal(err)
	}
	type totals struct {
		Calls    int     `json:"calls"`
		Answered int     `json:"answered"`
		ASR      float64 `json:"asr"`
	}
	got, err := chromedp.Run(ctx, chromedp.Poll[struct {
		Totals totals `json:"totals"`
		Regs   int    `json:"regs"`
		Fails  int    `json:"fails"`
	}](`window.__overview && window.__overview.loaded ? window.__overview : null`, chromedp.WithPollingTimeout(20*time.Second)))
	if err != nil {
		t.Fatal(err)
	}
	if got.Totals.Calls != calls || got.Totals.Answered != answered || calls == 0 {
		t.Errorf("overview totals %+v, SQL calls %d answered %d", got.Totals, calls, answered)
	}
	if want := float64(answered) * 100 / float64(calls); got.Totals.ASR < want-0.01 || got.Totals.ASR > want+0.01 {
		t.Errorf("ASR %.2f, want %.2f", got.Totals.ASR, want)
	}
	if got.Regs != aors || got.Fails != failedAORs {
		t.Errorf("registrations: page %d AORs / %d failing, SQL %d / %d", got.Regs, got.Fails, aors, failedAORs)
	}
	t.Logf("overview: %d calls, %d answered; %d AORs, %d failing", calls, answered, aors, failedAORs)
	checkInProgress(t, e, ctx, last.Add(time.Hour).Truncate(time.Minute).Add(time.Minute-6*time.Hour), 360)
	rows, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll("#regs tbody tr, #fails tbody tr")].map(tr => tr.textContent)`))
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 || !strings.HasPrefix(rows[0], "2001@pbx.testexpired") || !strings.HasPrefix(rows[1], "2002@pbx.test5") || !strings.Contains(rows[1], "10.0.0.4"+failReason) {
		t.Errorf("registration rows %q: want 2001 expired (its last state), 2002 with 5 failures, last from 10.0.0.4 with %q", rows, failReason)
	}
	browsertest.Screenshots(t, ctx, "console-overview")
}

// TestConsoleOverviewConcurrent: the overview's calls in progress per
// bucket and sensor over a known set of CDRs (now 12:00:00, so the hour's
// buckets are the minutes from 11:01): three calls of sensor 1 overlap in
// 11:51, one ends exactly at 11:52:00 (not in 11:52), one has no length,
// one started before the window, one ends after it, two lie outside it.
func TestConsoleOverviewConcurrent(t *testing.T) {
	e := newEnvWith(t, envSpec{}, nil)
	for _, c := range []struct {
		from, to string
		sensor   int
	}{
		{"11:50:10", "11:53:20", 1}, // A
		{"11:51:30", "11:52:00", 1}, // B: ends on the minute
		{"11:51:50", "11:52:45", 1}, // C
		{"11:55:00", "11:55:00", 1}, // H: no length
		{"10:00:00", "10:30:00", 1}, // F: before the hour
		{"10:30:00", "11:01:30", 2}, // D: started before the hour
		{"11:59:30", "12:05:00", 2}, // E: ends after the window
		{"12:02:00", "12:03:00", 2}, // G: after the window
	} {
		if _, err := e.db.Exec("INSERT INTO cdr (calldate, callend, id_sensor) VALUES (?, ?, ?)",
			"2025-01-01 "+c.from, "2025-01-01 "+c.to, c.sensor); err != nil {
			t.Fatal(err)
		}
	}
	cookie := e.login(t, "admin", "adminpw")
	for _, tc := range []struct {
		query string
		step  int
		want  map[string]map[int]int // sensor → bucket → calls (others 0)
	}{
		{"hours=1", 60, map[string]map[int]int{"1": {49: 1, 50: 3, 51: 2, 52: 1, 54: 1}, "2": {0: 1, 58: 1, 59: 1}}},
		{"hours=1&fsensor_id=2", 60, map[string]map[int]int{"2": {0: 1, 58: 1, 59: 1}}},
		{"hours=6", 360, map[string]map[int]int{"1": {39: 1, 40: 1, 41: 1, 42: 1, 43: 1, 44: 1, 58: 3, 59: 1},
			"2": {44: 1, 45: 1, 46: 1, 47: 1, 48: 1, 49: 1, 50: 1, 59: 1}}},
	} {
		st, b, _ := e.do(t, "GET", "/console/api/overview?"+tc.query, "", "Cookie", cookie)
		var rep struct {
			Step       int `json:"step"`
			Buckets    int `json:"buckets"`
			Concurrent []struct {
				Sensor string `json:"sensor"`
				Calls  []int  `json:"calls"`
			} `json:"concurrent"`
		}
		if err := json.Unmarshal(b, &rep); st != 200 || err != nil {
			t.Fatalf("%s: %d %v %.200s", tc.query, st, err, b)
		}
		if rep.Step != tc.step || rep.Buckets != 60 || len(rep.Concurrent) != len(tc.want) {
			t.Fatalf("%s: step %d, %d buckets, %d sensors; want %d, 60, %d", tc.query, rep.Step, rep.Buckets, len(rep.Concurrent), tc.step, len(tc.want))
		}
		for _, s := range rep.Concurrent {
			want := make([]int, 60)
			for i, n := range tc.want[s.Sensor] {
				want[i] = n
			}
			if !slices.Equal(s.Calls, want) {
				t.Errorf("%s: sensor %s in progress %v, want %v", tc.query, s.Sensor, s.Calls, want)
			}
		}
		t.Logf("%s: %+v", tc.query, rep.Concurrent)
	}
}

// checkDownloadLinks: the detail page's download links (as admin) are the
// merged pcap, WAV, Ogg and SIP text (and the fax pages, not checked here),
// and each answers with its kind of file.
func checkDownloadLinks(t *testing.T, e *testEnv, ctx context.Context) {
	t.Helper()
	links, err := chromedp.Run(ctx, chromedp.Evaluate[[][]string](`[...document.querySelectorAll("#downloads a")].map(a => [a.textContent, a.getAttribute("href")])`))
	if err != nil {
		t.Fatal(err)
	}
	isPCAP := func(b []byte) bool {
		return len(b) > 24 && (string(b[:4]) == "\xd4\xc3\xb2\xa1" || string(b[:4]) == "\x4d\x3c\xb2\xa1" || string(b[:4]) == "\x0a\x0d\x0d\x0a")
	}
	prefix := func(p string) func([]byte) bool {
		return func(b []byte) bool { return strings.HasPrefix(string(b), p) }
	}
	kinds := map[string]func([]byte) bool{"merged pcap": isPCAP, "WAV": prefix("RIFF"), "Ogg": prefix("OggS"),
		"SIP text": func(b []byte) bool { return strings.Contains(string(b), "INVITE sip:") }}
	if !codec.Built {
		delete(kinds, "Ogg")
	}
	cookie := e.login(t, "admin", "adminpw")
	var labels []string
	seen := 0
	for _, l := range links {
		labels = append(labels, l[0])
		ok, known := kinds[l[0]]
		if !known {
			continue
		}
		seen++
		if st, b, _ := e.do(t, "GET", l[1], "", "Cookie", cookie); st != 200 || !ok(b) {
			t.Errorf("%s (%s): %d %q", l[0], l[1], st, b[:min(len(b), 16)])
		}
	}
	if seen != len(kinds) {
		t.Errorf("download links %v, want merged pcap, WAV, Ogg and SIP text", labels)
	}
	t.Logf("download links: %v", labels)
}

// checkInProgress: the overview page's calls in progress (60 steps of step
// seconds from start) are, per sensor and step, the CDRs SQL finds
// overlapping the step, and the uPlot chart draws them.
func checkInProgress(t *testing.T, e *testEnv, ctx context.Context, start time.Time, step int) {
	t.Helper()
	want := map[string][]int{}
	for i := range 60 {
		bs := start.Add(time.Duration(i*step) * time.Second)
		be := bs.Add(time.Duration(step) * time.Second)
		rs, err := e.db.Query("SELECT COALESCE(id_sensor,-1), COUNT(*) FROM cdr WHERE calldate < ? AND (callend > ? OR calldate >= ?) GROUP BY 1",
			sqlTimeUTC(be), sqlTimeUTC(bs), sqlTimeUTC(bs))
		if err != nil {
			t.Fatal(err)
		}
		for rs.Next() {
			var sensor string
			var n int
			if err := rs.Scan(&sensor, &n); err != nil {
				t.Fatal(err)
			}
			if want[sensor] == nil {
				want[sensor] = make([]int, 60)
			}
			want[sensor][i] = n
		}
		rs.Close()
	}
	type view struct {
		Concurrent map[string][]int `json:"concurrent"`
		Chart      [][]float64      `json:"chart"`
		Peaks      []string         `json:"peaks"`
	}
	got, err := chromedp.Run(ctx, chromedp.Evaluate[view](`({concurrent: window.__overview.concurrent,
		chart: window.__overview.concChart ? window.__overview.concChart.data : [],
		peaks: [...document.querySelectorAll("#sensors tbody td:nth-child(7)")].map(td => td.textContent)})`))
	if err != nil {
		t.Fatal(err)
	}
	if len(want) == 0 || len(got.Concurrent) != len(want) || len(got.Chart) != len(want)+1 {
		t.Fatalf("calls in progress: page %v (chart of %d series), SQL %v", got.Concurrent, len(got.Chart)-1, want)
	}
	if x := got.Chart[0]; len(x) != 61 || x[0] != float64(start.Unix()) || x[60]-x[0] != float64(60*step) {
		t.Errorf("chart's time axis %v, want the bounds of 60 steps of %d s from %d", x, step, start.Unix())
	}
	for sensor, w := range want {
		if !slices.Equal(got.Concurrent[sensor], w) {
			t.Errorf("sensor %s in progress: page %v, SQL %v", sensor, got.Concurrent[sensor], w)
		}
		if peak := strconv.Itoa(slices.Max(w)); !slices.Contains(got.Peaks, peak) {
			t.Errorf("sensor %s: peak %s not in the table's %v", sensor, peak, got.Peaks)
		}
		t.Logf("sensor %s in progress per %d s: %v", sensor, step, w)
	}
	for i, ys := range got.Chart[1:] {
		drawn := make([]int, 60)
		for j, y := range ys[:min(len(ys), 60)] {
			drawn[j] = int(y)
		}
		same := func(c []int) bool { return slices.Equal(c, drawn) }
		if len(ys) != 61 || ys[60] != ys[59] || !slices.ContainsFunc(slices.Collect(maps.Values(got.Concurrent)), same) {
			t.Errorf("chart series %d %v is none of the page's sensors", i+1, ys)
		}
	}
}

// sqlTimeUTC is a datetime literal of a database in UTC (utc = yes).
func sqlTimeUTC(t time.Time) string { return cdrquery.SQLTime(t, nil) }
