package webui

import (
	"encoding/json"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"

	"pbx-agent/internal/browsertest"
	"pbx-agent/internal/tone"
	"pbx-agent/sniffer/decode"
	"pbx-agent/sniffer/fixture"
	"pbx-agent/sniffer/simulate"
)

// lossCall is a generated call (caller 700 Hz, callee 1300 Hz, 12 s of
// media) whose caller stream loses every packet of one second and 10
// packets of another: the generator's loss options are random, so the
// test cuts those packets out of the capture itself. It returns the pcap
// and the two cut windows' starts (whole seconds of capture time).
func lossCall(t *testing.T) (path string, whole, part time.Time) {
	t.Helper()
	frames, truth, err := simulate.Frames(simulate.Options{Calls: 1, Duration: 12 * time.Second, Tones: [2]float64{700, 1300}, Seed: 5})
	if err != nil {
		t.Fatal(err)
	}
	var caller simulate.StreamTruth
	for _, s := range truth.Streams {
		if s.Direction == 0 {
			caller = s
		}
	}
	dec, err := decode.New(layers.LinkTypeEthernet)
	if err != nil {
		t.Fatal(err)
	}
	var pkt decode.Packet
	isCaller := func(f simulate.Frame) bool {
		ok, err := dec.Decode(f.Data, f.CI.Timestamp, &pkt)
		return ok && err == nil && pkt.Src == caller.Src && pkt.Dst == caller.Dst
	}
	var first time.Time
	for _, f := range frames {
		if isCaller(f) {
			first = f.CI.Timestamp
			break
		}
	}
	if first.IsZero() {
		t.Fatal("no caller RTP in the generated call")
	}
	base := first.Truncate(time.Second)
	whole, part = base.Add(4*time.Second), base.Add(8*time.Second)
	path = filepath.Join(t.TempDir(), "loss-call.pcap")
	out, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	w := pcapgo.NewWriter(out)
	if err := w.WriteFileHeader(simulate.Snaplen, layers.LinkTypeEthernet); err != nil {
		t.Fatal(err)
	}
	cut := 0
	for _, f := range frames {
		ts := f.CI.Timestamp
		inWhole := !ts.Before(whole) && ts.Before(whole.Add(time.Second))
		inPart := !ts.Before(part) && ts.Before(part.Add(200*time.Millisecond))
		if (inWhole || inPart) && isCaller(f) {
			cut++
			continue
		}
		if err := w.WritePacket(f.CI, f.Data); err != nil {
			t.Fatal(err)
		}
	}
	if cut != 60 {
		t.Fatalf("cut %d caller packets, want 60 (50 + 10)", cut)
	}
	return path, whole, part
}

// TestConsoleQualityAndTone: a generated call whose caller stream lost a
// whole second and 10 packets of another. The API's per-second series and
// the page's uPlot chart show the loss at exactly those seconds (of the
// call's clock) and nowhere else; the MOS dips there. The recording the
// page plays, rendered by an OfflineAudioContext, has the caller's 700 Hz
// dominant on the left and the callee's 1300 Hz on the right.
func TestConsoleQualityAndTone(t *testing.T) {
	pcap, whole, part := lossCall(t)
	ctx, cancel := browsertest.New(t, 120*time.Second)
	defer cancel()
	e := newEnvWith(t, envSpec{paths: []string{pcap}, saveGraph: true}, nil)
	ids := sqlIDs(t, e, "SELECT ID FROM cdr")
	if len(ids) != 1 {
		t.Fatalf("CDRs %v, want the one generated call", ids)
	}
	var callDate string
	if err := e.db.QueryRow("SELECT calldate FROM cdr").Scan(&callDate); err != nil {
		t.Fatal(err)
	}
	cd, err := time.Parse("2006-01-02 15:04:05.000", callDate)
	if err != nil {
		t.Fatal(err)
	}
	wantLost := map[float64]float64{round3(whole.Sub(cd).Seconds()): 50, round3(part.Sub(cd).Seconds()): 10}

	// The API.
	cookie := e.login(t, "admin", "adminpw")
	st, b, _ := e.do(t, "GET", "/console/api/call?id="+ids[0], "", "Cookie", cookie)
	if st != 200 {
		t.Fatalf("api/call: %d %s", st, b)
	}
	var rep struct {
		Series []struct {
			Index string    `json:"index"`
			Step  int       `json:"step"`
			T     []float64 `json:"t"`
			Lost  []float64 `json:"lost"`
			MOS   []float64 `json:"mos"`
		} `json:"series"`
	}
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Series) != 2 {
		t.Fatalf("%d series, want one per stream (2)", len(rep.Series))
	}
	lossAt := func(ts, lost []float64) map[float64]float64 {
		m := map[float64]float64{}
		for i, l := range lost {
			if l > 0 {
				m[round3(ts[i])] = l
			}
		}
		return m
	}
	var withLoss []map[float64]float64
	for _, s := range rep.Series {
		if s.Step != 1 || len(s.T) < 12 || len(s.Lost) != len(s.T) {
			t.Fatalf("stream %s: step %d, %d points", s.Index, s.Step, len(s.T))
		}
		if m := lossAt(s.T, s.Lost); len(m) > 0 {
			withLoss = append(withLoss, m)
			for i, ts := range s.T {
				if wantLost[round3(ts)] == 50 && s.MOS[i] >= 4.5 {
					t.Errorf("stream %s at %.3f s: MOS %.1f after losing the whole second", s.Index, ts, s.MOS[i])
				}
			}
		}
	}
	if len(withLoss) != 1 || !mapsEqual(withLoss[0], wantLost) {
		t.Fatalf("API loss per second %v, want one stream with %v (s from the INVITE)", withLoss, wantLost)
	}
	t.Logf("API: loss %v s from the INVITE", withLoss[0])

	// The page: the chart's own data (uPlot's u.data).
	err = chromedp.Do(ctx,
		browsertest.Login(e.srv.URL+"/console/call.html?id="+ids[0], "admin", "adminpw"),
		chromedp.WaitVisible(chromedp.CSS("#q-lost canvas")),
	)
	if err != nil {
		t.Fatalf("detail page: %v", err)
	}
	chart, err := chromedp.Run(ctx, chromedp.Evaluate[[][]*float64](`window.__call.quality.charts.lost.data`))
	if err != nil {
		t.Fatal(err)
	}
	var pageLoss []map[float64]float64
	for _, ys := range chart[1:] {
		m := map[float64]float64{}
		for i, y := range ys {
			if y != nil && *y > 0 {
				m[round3(*chart[0][i])] = *y
			}
		}
		if len(m) > 0 {
			pageLoss = append(pageLoss, m)
		}
	}
	if len(chart) != 3 || len(pageLoss) != 1 || !mapsEqual(pageLoss[0], wantLost) {
		t.Fatalf("chart: %d series, loss %v; want 2 streams, one with %v", len(chart)-1, pageLoss, wantLost)
	}
	browsertest.Screenshots(t, ctx, "console-call-quality")

	// The recording the page plays (its <audio> holds these bytes as a blob),
	// rendered by an OfflineAudioContext.
	const render = `(async () => {
	  try {
	    const bytes = await (await fetch(window.__call.recording, { credentials: "same-origin" })).arrayBuffer();
	    const buf = await new OfflineAudioContext(2, 1, 8000).decodeAudioData(bytes);
	    const ctx = new OfflineAudioContext(2, buf.length, buf.sampleRate);
	    const src = ctx.createBufferSource();
	    src.buffer = buf;
	    src.connect(ctx.destination);
	    src.start();
	    const out = await ctx.startRendering();
	    const from = Math.floor(out.sampleRate * 1.5), n = Math.floor(out.sampleRate);
	    const take = (c) => Array.from(out.getChannelData(c).subarray(from, from + n), (v) => Math.round(v * 32767));
	    window.__render = { rate: out.sampleRate, channels: out.numberOfChannels, left: take(0), right: take(1) };
	  } catch (e) { window.__render = { error: String(e) }; }
	})(); true`
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`!!(window.__call.wave && document.getElementById("audio").src)`, chromedp.WithPollingTimeout(30*time.Second))); err != nil {
		t.Fatalf("recording not loaded: %v", err)
	}
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](render)); err != nil {
		t.Fatal(err)
	}
	type rendered struct {
		Rate        float64 `json:"rate"`
		Channels    int     `json:"channels"`
		Left, Right []int16
		Error       string `json:"error"`
	}
	got, err := chromedp.Run(ctx, chromedp.Poll[rendered](`window.__render || null`, chromedp.WithPollingTimeout(30*time.Second)))
	if err != nil || got.Error != "" {
		t.Fatalf("OfflineAudioContext render: %v %s", err, got.Error)
	}
	left, right := tone.Over(got.Left, got.Rate, 700, 1300), tone.Over(got.Right, got.Rate, 1300, 700)
	t.Logf("rendered %d channels at %.0f Hz: left 700 Hz over 1300 Hz %.1f dB, right 1300 Hz over 700 Hz %.1f dB", got.Channels, got.Rate, left, right)
	if got.Channels != 2 || left < 20 || right < 20 {
		t.Errorf("rendered recording: %d channels, left 700/1300 %.1f dB, right 1300/700 %.1f dB; want the caller's tone left and the callee's right by 20 dB", got.Channels, left, right)
	}
}

func round3(v float64) float64 { return math.Round(v*1000) / 1000 }

func mapsEqual(a, b map[float64]float64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// TestConsoleAudioFaxFilter: the history's "audio" and "fax" filters list
// exactly the CDRs SQL finds with the same conditions (a call with RTP
// captured; payload 1000/1001, as the writer stores a T.38 call), both
// ways, over the repo's captures and a real Asterisk T.38 fax call.
func TestConsoleAudioFaxFilter(t *testing.T) {
	ctx, cancel := browsertest.New(t, 120*time.Second)
	defer cancel()
	paths := []string{fixture.Repo(t, "testdata", "pcap", "asterisk-fax-t38.pcap")}
	for _, name := range captures {
		paths = append(paths, fixture.Repo(t, "testdata", "pcap", name))
	}
	e := newEnvFrom(t, paths, nil)
	all := sqlIDs(t, e, "SELECT ID FROM cdr ORDER BY calldate DESC, ID DESC")
	if len(all) < 3 || len(all) > 30 {
		t.Fatalf("%d CDRs: the test wants a few, on one page", len(all))
	}
	if fax := sqlIDs(t, e, "SELECT ID FROM cdr WHERE payload = 1000"); len(fax) == 0 {
		t.Fatal("the T.38 call is not stored with payload 1000")
	}
	audio := "(COALESCE(a_received, 0) > 0 OR COALESCE(b_received, 0) > 0)"
	tests := []struct {
		param, value, where string
	}{
		{"fhasaudio", "1", audio},
		{"fhasaudio", "0", "NOT " + audio},
		{"ffax", "1", "COALESCE(payload, 0) IN (1000, 1001)"},
		{"ffax", "0", "NOT COALESCE(payload, 0) IN (1000, 1001)"},
	}
	loggedIn := false
	for _, tc := range tests {
		want := sqlIDs(t, e, "SELECT ID FROM cdr WHERE "+tc.where+" ORDER BY calldate DESC, ID DESC")
		if len(want) == 0 || len(want) == len(all) {
			t.Fatalf("%s=%s: SQL finds %d of %d CDRs: the filter tells nothing apart here", tc.param, tc.value, len(want), len(all))
		}
		page := e.srv.URL + "/console/calls.html?" + url.Values{"fdatefrom": {"2000-01-01T00:00:00"}, "fdateto": {"2100-01-01T00:00:00"}, tc.param: {tc.value}}.Encode()
		acts := []chromedp.Action[chromedp.Void]{chromedp.Navigate(page)}
		if !loggedIn {
			acts = append(acts, chromedp.WaitVisible(chromedp.CSS("#login")), chromedp.SendKeys(chromedp.CSS("#user"), "admin"),
				chromedp.SendKeys(chromedp.CSS("#pass"), "adminpw"), chromedp.Click(chromedp.CSS("#loginBtn")))
			loggedIn = true
		}
		if err := chromedp.Do(ctx, acts...); err != nil {
			t.Fatal(err)
		}
		ids := consoleIDs(t, ctx)
		if !slices.Equal(ids, want) {
			t.Errorf("%s=%s: page %v, SQL %v", tc.param, tc.value, ids, want)
		}
		sel, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('[name="`+tc.param+`"]').value`))
		if sel != tc.value {
			t.Errorf("%s=%s: the form shows %q", tc.param, tc.value, sel)
		}
		t.Logf("%s=%s: %d of %d CDRs, as SQL", tc.param, tc.value, len(ids), len(all))
	}
}
