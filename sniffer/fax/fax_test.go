package fax

import (
	"errors"
	"flag"
	"image"
	"os"
	"path/filepath"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata/sent.tif")

// sentTIFF is the two-page TIFF-F the recorded Asterisk calls sent.
const sentTIFF = "testdata/sent.tif"

func needSpandsp(t *testing.T) {
	t.Helper()
	if !Built {
		t.Skip("built without spandsp")
	}
}

// pageDiff compares a received page with the page it should show: the
// fraction of the wanted page's pixels that differ, after mapping each
// wanted row to the received row by the two vertical resolutions (a fine
// 196 lpi page has two rows per standard row) and shifting by the best
// offset of 0 to 40 received rows (a sender may add a header line above
// the page, as Asterisk's FAXOPT(headerinfo) does).
func pageDiff(got *image.Gray, gotYRes float64, want *image.Gray, wantYRes float64) (float64, int) {
	best, bestOff := 2.0, 0
	for off := 0; off <= 40; off++ {
		if d := pageDiffAt(got, gotYRes, want, wantYRes, off); d < best {
			best, bestOff = d, off
			if d == 0 {
				break
			}
		}
	}
	return best, bestOff
}

func pageDiffAt(got *image.Gray, gotYRes float64, want *image.Gray, wantYRes float64, off int) float64 {
	wb, gb := want.Bounds(), got.Bounds()
	diff, total := 0, 0
	for y := range wb.Dy() {
		gy := off + int(float64(y)*gotYRes/wantYRes)
		total += wb.Dx()
		if gy >= gb.Dy() {
			diff += wb.Dx()
			continue
		}
		for x := range wb.Dx() {
			if x >= gb.Dx() || (got.Pix[gy*got.Stride+x] < 128) != (want.Pix[y*want.Stride+x] < 128) {
				diff++
			}
		}
	}
	return float64(diff) / float64(total)
}

// checkPages asserts that file holds exactly the pattern pages 1..n.
func checkPages(t *testing.T, file string, n int) {
	t.Helper()
	got, err := CountPages(file)
	if err != nil || got != n {
		t.Fatalf("%s: %d pages, err %v; want %d", file, got, err, n)
	}
	for i := range n {
		img, info, err := ReadPage(file, i)
		if err != nil {
			t.Fatalf("page %d: %v", i+1, err)
		}
		d, off := pageDiff(img, info.YRes, Pattern(i+1), 98)
		t.Logf("%s page %d: %d × %d at %.0f × %.0f dpi, %.4f%% of pixels differ from the sent page (%d rows above it)", filepath.Base(file), i+1, info.Width, info.Rows, info.XRes, info.YRes, 100*d, off)
		if d > 0.001 {
			t.Errorf("page %d differs from the sent page in %.2f%% of pixels", i+1, 100*d)
		}
		if other, _ := pageDiff(img, info.YRes, Pattern(i+2), 98); other < 0.01 {
			t.Errorf("page %d also matches page %d: the comparison cannot tell pages apart", i+1, i+2)
		}
	}
}

// samePages asserts that two TIFF files hold the same pages pixel for pixel.
func samePages(t *testing.T, a, b string) {
	t.Helper()
	na, erra := CountPages(a)
	nb, errb := CountPages(b)
	if erra != nil || errb != nil || na != nb {
		t.Fatalf("%s: %d pages (%v), %s: %d pages (%v)", a, na, erra, b, nb, errb)
	}
	for i := range na {
		pa, _, err := ReadPage(a, i)
		if err != nil {
			t.Fatal(err)
		}
		pb, _, err := ReadPage(b, i)
		if err != nil {
			t.Fatal(err)
		}
		if pa.Rect != pb.Rect {
			t.Errorf("page %d: %v against %v", i+1, pa.Rect, pb.Rect)
			continue
		}
		diff := 0
		for k := range pa.Pix {
			if pa.Pix[k] != pb.Pix[k] {
				diff++
			}
		}
		t.Logf("page %d: %d of %d pixels differ from %s", i+1, diff, len(pa.Pix), filepath.Base(b))
		if diff != 0 {
			t.Errorf("page %d: %d pixels differ", i+1, diff)
		}
	}
}

func TestSentTIFF(t *testing.T) {
	needSpandsp(t)
	if *update {
		if err := WriteTIFF(sentTIFF, []*image.Gray{Pattern(1), Pattern(2)}, 204, 98); err != nil {
			t.Fatal(err)
		}
	}
	checkPages(t, sentTIFF, 2)
}

func TestReadPageErrors(t *testing.T) {
	needSpandsp(t)
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.tif")
	os.WriteFile(bad, []byte("II*\x00garbage"), 0o644)
	for _, f := range []string{bad, filepath.Join(dir, "missing.tif")} {
		if _, _, err := ReadPage(f, 0); !errors.Is(err, ErrTIFF) {
			t.Errorf("%s: err %v, want ErrTIFF", f, err)
		}
	}
	if _, _, err := ReadPage(sentTIFF, 2); !errors.Is(err, ErrTIFF) {
		t.Errorf("page 3 of 2: err %v, want ErrTIFF", err)
	}
}

// simulated runs the spandsp sender/receiver pair over sent.tif and
// returns the sender's IFPs with their times.
type timedIFP struct {
	at  time.Duration
	ifp []byte
}

func simulated(t *testing.T) []timedIFP {
	t.Helper()
	var out []timedIFP
	err := SimulateT38(sentTIFF, filepath.Join(t.TempDir(), "sim-rx.tif"), "PBX-AGENT TEST", 5*time.Minute, func(fromSender bool, at time.Duration, b []byte) {
		if fromSender {
			out = append(out, timedIFP{at, b})
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestT38ReceiverRecovers: the sender's IFPs of a simulated exchange,
// wrapped in UDPTL with 2 redundant IFPs, every 5th packet lost: the
// passive receiver recovers them and gets both pages.
func TestT38ReceiverRecovers(t *testing.T) {
	needSpandsp(t)
	ifps := simulated(t)
	file := filepath.Join(t.TempDir(), "rx.tif")
	rx, err := NewT38Receiver(file)
	if err != nil {
		t.Fatal(err)
	}
	var s Stream
	var buf []byte
	var p, q Packet
	last := time.Duration(0)
	for i, f := range ifps {
		p = Packet{Seq: uint16(i), Primary: f.ifp}
		for k := 0; k < 2 && i-1-k >= 0; k++ {
			p.Secondary[k] = ifps[i-1-k].ifp
			p.NSecondary++
		}
		buf = Append(buf[:0], &p)
		if i%5 == 3 {
			continue // lost on the wire
		}
		if err := Parse(buf, &q); err != nil {
			t.Fatalf("packet %d: %v", i, err)
		}
		rx.Advance(int((f.at - last) / (time.Second / 8000)))
		last = f.at
		s.Push(&q, rx.IFP)
	}
	rx.Advance(8000 * 5)
	rx.Close()
	r := rx.Result()
	t.Logf("%d IFPs, stream %+v, result %+v", len(ifps), s, r)
	if s.Recovered == 0 || s.Lost != 0 {
		t.Errorf("recovered %d, lost %d; want some recovered and none lost", s.Recovered, s.Lost)
	}
	if r.Pages != 2 || r.Code != 0 || r.RemoteID != "PBX-AGENT TEST" {
		t.Errorf("result %+v, want 2 pages, code 0, remote PBX-AGENT TEST", r)
	}
	checkPages(t, file, 2)
}
