package rtp

import (
	"bufio"
	"encoding/csv"
	"fmt"
	"math"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"pbx-agent/sniffer/fixture"
)

// tsharkStream is one row of `tshark -q -z rtp,streams`.
type tsharkStream struct {
	file                         string
	key                          streamKey
	payload                      string
	pkts, lost                   int
	minDelta, meanDelta, maxDelt float64
	minJit, meanJit, maxJit      float64
}

// parseTsharkRef reads reference-tshark.txt: "FILE name" lines followed by
// rtp,streams rows.
func parseTsharkRef(t *testing.T, path string) []tsharkStream {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Skipf("tshark reference %s not available: %v", path, err)
	}
	defer f.Close()
	var out []tsharkStream
	file := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if name, ok := strings.CutPrefix(line, "FILE "); ok {
			file = strings.TrimSpace(name)
			continue
		}
		fs := strings.Fields(line)
		if len(fs) < 17 || !strings.HasPrefix(fs[6], "0x") {
			continue
		}
		if fs[len(fs)-1] == "X" {
			fs = fs[:len(fs)-1]
		}
		n := len(fs)
		num := func(i int) float64 {
			v, err := strconv.ParseFloat(fs[i], 64)
			if err != nil {
				t.Fatalf("%s: field %q: %v", line, fs[i], err)
			}
			return v
		}
		ssrc, err := strconv.ParseUint(fs[6][2:], 16, 32)
		if err != nil {
			t.Fatalf("ssrc %q: %v", fs[6], err)
		}
		src := netip.AddrPortFrom(netip.MustParseAddr(fs[2]), uint16(num(3)))
		dst := netip.AddrPortFrom(netip.MustParseAddr(fs[4]), uint16(num(5)))
		out = append(out, tsharkStream{
			file:      file,
			key:       streamKey{src, dst, uint32(ssrc)},
			payload:   strings.Join(fs[7:n-9], " "),
			pkts:      int(num(n - 9)),
			lost:      int(num(n - 8)),
			minDelta:  num(n - 6),
			meanDelta: num(n - 5),
			maxDelt:   num(n - 4),
			minJit:    num(n - 3),
			meanJit:   num(n - 2),
			maxJit:    num(n - 1),
		})
	}
	return out
}

// configFor builds the StreamConfig a call table would build from the SDP,
// here from tshark's payload names.
func configFor(payload string) StreamConfig {
	var cfg StreamConfig
	switch {
	case strings.Contains(payload, "opus"):
		cfg.Codec = CodecByName("opus", 48000)
	case strings.Contains(payload, "g711U"):
		cfg.Codec = CodecPCMU
	case strings.Contains(payload, "g711A"):
		cfg.Codec = CodecPCMA
	}
	if strings.Contains(payload, "telephone-event") {
		cfg.EventPT = 96 // what SIP_DTMF2's SDP announces
	}
	if strings.Contains(payload, "rtpevent") {
		cfg.EventPT = 101 // dtmf_2833_1.pcap has no SDP; tshark finds it heuristically
	}
	return cfg
}

// Tolerances against tshark. Packets and loss must match exactly; tshark
// prints 3 decimals, so max delta and max jitter must match to its rounding.
// Mean jitter gets 0.025 ms: tshark's running mean divides by every packet
// so far while only "regular" packets (no marker, not CN) add to it, so it
// drifts below a true mean when a stream has CN or marker packets
// (sip_ipv4_tcp.pcap: 2.304 vs our 2.324); every other stream agrees to 0.001.
const (
	tolDelta     = 0.0006
	tolMaxJitter = 0.0006
	tolJitter    = 0.025
)

func TestRefereeTshark(t *testing.T) {
	type set struct{ dir, ref string }
	sets := []set{
		{"public", "reference-tshark.txt"},
		{"synthetic", "reference-tshark.txt"},
	}
	var compared, exactLoss, jitterOK int
	var worstMean, worstMax float64
	for _, st := range sets {
		ref := parseTsharkRef(t, fixture.Shared(t, st.dir, st.ref))
		byFile := map[string][]tsharkStream{}
		for _, r := range ref {
			byFile[r.file] = append(byFile[r.file], r)
		}
		for file, rows := range byFile {
			t.Run(file, func(t *testing.T) {
				want := map[streamKey]StreamConfig{}
				for _, r := range rows {
					want[r.key] = configFor(r.payload)
				}
				got := feedStreams(t, fixture.Shared(t, st.dir, file), want)
				for _, r := range rows {
					s := got[r.key]
					if s == nil {
						t.Errorf("stream %v not found", r.key)
						continue
					}
					sum := s.Summary()
					compared++
					name := fmt.Sprintf("%s %v->%v 0x%08X", file, r.key.src, r.key.dst, r.key.ssrc)
					if sum.Received != r.pkts || sum.LostRaw != r.lost {
						t.Errorf("%s: packets/lost = %d/%d, tshark %d/%d", name, sum.Received, sum.LostRaw, r.pkts, r.lost)
					} else {
						exactLoss++
					}
					if math.Abs(sum.MaxDelta-r.maxDelt) > tolDelta {
						t.Errorf("%s: max delta = %.4f, tshark %.3f", name, sum.MaxDelta, r.maxDelt)
					}
					if sum.Events > 0 && sum.Events < sum.Received {
						// tshark runs its jitter through the telephone-event packets
						// (whose timestamp stays fixed during an event); VoIPmonitor
						// and we skip them, so only the voice-only jitter is comparable.
						t.Logf("%s: jitter mean/max %.3f/%.3f (tshark %.3f/%.3f includes %d event packets; not compared)",
							name, sum.AvgJitter, sum.MaxJitter, r.meanJit, r.maxJit, sum.Events)
						continue
					}
					dm, dx := math.Abs(sum.AvgJitter-r.meanJit), math.Abs(sum.MaxJitter-r.maxJit)
					worstMean, worstMax = max(worstMean, dm), max(worstMax, dx)
					if dm > tolJitter || dx > tolMaxJitter {
						t.Errorf("%s: jitter mean/max = %.4f/%.4f, tshark %.3f/%.3f", name, sum.AvgJitter, sum.MaxJitter, r.meanJit, r.maxJit)
					} else {
						jitterOK++
					}
				}
			})
		}
	}
	t.Logf("tshark referee: %d streams compared, %d exact packets+loss, %d jitter within tolerance (worst mean %.4f, max %.4f ms)",
		compared, exactLoss, jitterOK, worstMean, worstMax)
}

// TestSyntheticTruth checks loss exactly against the generator's ground truth.
func TestSyntheticTruth(t *testing.T) {
	dir := fixture.Shared(t, "synthetic")
	truths, _ := filepath.Glob(filepath.Join(dir, "*.truth.tsv"))
	if len(truths) == 0 {
		t.Skip("no synthetic truth files")
	}
	n := 0
	for _, tf := range truths {
		f, err := os.Open(tf)
		if err != nil {
			t.Fatal(err)
		}
		r := csv.NewReader(f)
		r.Comma = '\t'
		recs, err := r.ReadAll()
		f.Close()
		if err != nil {
			t.Fatalf("%s: %v", tf, err)
		}
		type truth struct{ sent, lost int }
		want := map[streamKey]StreamConfig{}
		tr := map[streamKey]truth{}
		for _, rec := range recs[1:] {
			ssrc, _ := strconv.ParseUint(strings.TrimPrefix(rec[3], "0x"), 16, 32)
			k := streamKey{netip.MustParseAddrPort(rec[4]), netip.MustParseAddrPort(rec[5]), uint32(ssrc)}
			want[k] = StreamConfig{}
			sent, _ := strconv.Atoi(rec[6])
			lost, _ := strconv.Atoi(rec[7])
			tr[k] = truth{sent, lost}
		}
		got := feedStreams(t, strings.TrimSuffix(tf, ".truth.tsv")+".pcap", want)
		for k, w := range tr {
			sum := got[k].Summary()
			if sum.Received != w.sent || sum.Lost != w.lost {
				t.Errorf("%s %v: received/lost = %d/%d, truth %d/%d", filepath.Base(tf), k, sum.Received, sum.Lost, w.sent, w.lost)
			}
			if sl := sumSL(sum.SL); sl != w.lost {
				t.Errorf("%s %v: Σk·sl[k] = %d, truth lost %d", filepath.Base(tf), k, sl, w.lost)
			}
			n++
		}
	}
	t.Logf("synthetic truth: %d streams, exact loss checked", n)
}

func sumSL(sl [10]int) int {
	n := 0
	for i, c := range sl {
		n += (i + 1) * c
	}
	return n
}
