package sniffer

import (
	"bufio"
	"bytes"
	"fmt"
	"math"
	"net/netip"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"pbx-agent/sniffer/call"
	"pbx-agent/sniffer/fixture"
	"pbx-agent/sniffer/rtp"
)

// fixtureDirs are the folders of ../shared/fixtures whose every capture
// must agree with tshark without any SIP port given.
var fixtureDirs = []string{"public", "asterisk", "asterisk-ari", "synthetic", "asterisk-more"}

// everyFixture lists every capture of fixtureDirs, with no SIP ports: the
// sniffer must find the signalling by its content, as tshark does.
func everyFixture(t *testing.T) []captureCase {
	var out []captureCase
	for _, dir := range fixtureDirs {
		d := fixture.Shared(t, dir)
		for _, pat := range []string{"*.pcap", "*.pcapng", "*.cap"} {
			files, _ := filepath.Glob(filepath.Join(d, pat))
			for _, f := range files {
				out = append(out, captureCase{path: f})
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].path < out[j].path })
	return out
}

// TestEveryFixtureAgreesWithTshark replays every shared capture with the
// default configuration (no sipport) and compares the calls (Call-ID set,
// final code, caller, called) with tshark's SIP dissection, which finds SIP
// by content too.
func TestEveryFixtureAgreesWithTshark(t *testing.T) {
	cases := everyFixture(t)
	files, filesOK, calls, callsOK := 0, 0, 0, 0
	for _, c := range cases {
		name := filepath.Base(filepath.Dir(c.path)) + "/" + filepath.Base(c.path)
		files++
		ok := t.Run(name, func(t *testing.T) {
			got, _, _ := replay(t, c)
			want := tsharkCalls(t, c)
			n, agree := compareCalls(t, got, want)
			calls += n
			callsOK += agree
		})
		if ok {
			filesOK++
		}
	}
	t.Logf("no sipport: %d/%d captures fully agree with tshark; %d/%d calls (Call-ID, final code, caller, called)",
		filesOK, files, callsOK, calls)
}

// compareCalls checks got against tshark's calls and returns how many calls
// tshark has and how many of them agree in every field.
func compareCalls(t *testing.T, got []call.CDR, want map[string]*tsharkCall) (n, agree int) {
	t.Helper()
	byID := map[string]call.CDR{}
	for _, cd := range got {
		byID[cd.CallID] = cd
	}
	for id := range byID {
		if want[id] == nil {
			t.Errorf("%s: reported, tshark has no such INVITE dialog", id)
		}
	}
	for id, w := range want {
		n++
		g, ok := byID[id]
		switch {
		case !ok:
			t.Errorf("%s: missing (tshark: final %d %q→%q)", id, w.final, w.caller, w.called)
		case g.LastSIPResponseNum != w.final || g.Caller != w.caller || g.Called != w.called:
			t.Errorf("%s: got final %d caller %q called %q; tshark: %d %q %q", id,
				g.LastSIPResponseNum, g.Caller, g.Called, w.final, w.caller, w.called)
		default:
			agree++
		}
	}
	return n, agree
}

// tsharkStream is one row of `tshark -q -z rtp,streams`.
type tsharkStream struct {
	src, dst   netip.AddrPort
	ssrc       uint32
	pkts, lost int
	maxJitter  float64
	events     bool // payload column names telephone-event
}

// tsharkRTPStreams asks tshark for the RTP streams it finds (through the
// SDP of the SIP it dissects, on any port).
func tsharkRTPStreams(t *testing.T, path string) []tsharkStream {
	t.Helper()
	bin, err := exec.LookPath("tshark")
	if err != nil {
		t.Skip("tshark not installed (make test installs it); skipping the referee comparison")
	}
	out, err := exec.Command(bin, "-q", "-r", path, "-z", "rtp,streams").Output()
	if err != nil {
		t.Fatalf("tshark rtp,streams: %v", err)
	}
	var rows []tsharkStream
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) < 17 || !strings.HasPrefix(fs[6], "0x") {
			continue
		}
		if fs[len(fs)-1] == "X" {
			fs = fs[:len(fs)-1]
		}
		n := len(fs)
		src, err1 := netip.ParseAddr(fs[2])
		dst, err2 := netip.ParseAddr(fs[4])
		sp, err3 := strconv.Atoi(fs[3])
		dp, err4 := strconv.Atoi(fs[5])
		ssrc, err5 := strconv.ParseUint(fs[6][2:], 16, 32)
		pkts, err6 := strconv.Atoi(fs[n-9])
		lost, err7 := strconv.Atoi(fs[n-8])
		maxJ, err8 := strconv.ParseFloat(fs[n-1], 64)
		for _, err := range []error{err1, err2, err3, err4, err5, err6, err7, err8} {
			if err != nil {
				t.Fatalf("tshark row %q: %v", sc.Text(), err)
			}
		}
		rows = append(rows, tsharkStream{
			src: netip.AddrPortFrom(src, uint16(sp)), dst: netip.AddrPortFrom(dst, uint16(dp)),
			ssrc: uint32(ssrc), pkts: pkts, lost: lost, maxJitter: maxJ,
			events: strings.Contains(strings.Join(fs[7:n-9], " "), "event"),
		})
	}
	return rows
}

// minRefereeStream is the smallest stream the RTP comparison counts.
const minRefereeStream = 50

// TestEveryFixtureRTPAgreesWithTshark compares the RTP streams of every
// shared capture (default configuration, no sipport) with tshark's
// rtp,streams: packets and loss exactly, max jitter within 0.1 ms, on the
// streams of at least 50 packets. Streams whose jitter tshark runs through
// RFC 4733 event packets are listed as referee differences, not failures.
func TestEveryFixtureRTPAgreesWithTshark(t *testing.T) {
	var total, agree, refereeDiff int
	var missed []string
	for _, c := range everyFixture(t) {
		name := filepath.Base(filepath.Dir(c.path)) + "/" + filepath.Base(c.path)
		want := tsharkRTPStreams(t, c.path)
		calls, _, _ := replay(t, c)
		type key struct {
			src, dst netip.AddrPort
			ssrc     uint32
		}
		got := map[key]rtp.Summary{}
		for _, cd := range calls {
			for _, s := range cd.Streams {
				got[key{s.Src, s.Dst, s.SSRC}] = s
			}
		}
		for _, w := range want {
			if w.pkts < minRefereeStream {
				continue
			}
			total++
			id := fmt.Sprintf("%s %v→%v 0x%08X", name, w.src, w.dst, w.ssrc)
			g, ok := got[key{w.src, w.dst, w.ssrc}]
			switch {
			case !ok:
				missed = append(missed, id+": not reported")
			case g.Received != w.pkts || g.LostRaw != w.lost:
				missed = append(missed, fmt.Sprintf("%s: packets/lost %d/%d, tshark %d/%d", id, g.Received, g.LostRaw, w.pkts, w.lost))
			case math.Abs(g.MaxJitter-w.maxJitter) > 0.1 && g.Events > 0:
				refereeDiff++
				agree++
				t.Logf("%s: max jitter %.3f, tshark %.3f runs it through %d RFC 4733 event packets (referee difference)",
					id, g.MaxJitter, w.maxJitter, g.Events)
			case math.Abs(g.MaxJitter-w.maxJitter) > 0.1:
				missed = append(missed, fmt.Sprintf("%s: max jitter %.3f, tshark %.3f", id, g.MaxJitter, w.maxJitter))
			default:
				agree++
			}
		}
	}
	for _, m := range missed {
		t.Log(m)
	}
	t.Logf("no sipport: %d/%d RTP streams of ≥ %d packets agree with tshark rtp,streams (%d of them referee differences through RFC 4733 events)",
		agree, total, minRefereeStream, refereeDiff)
	if total == 0 || agree*100 < total*95 {
		t.Errorf("%d/%d streams agree, want ≥ 95 %%", agree, total)
	}
}
