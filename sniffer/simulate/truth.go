package simulate

import (
	"bufio"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Truth is what a Generator produced; it is complete once the generator has
// returned io.EOF.
type Truth struct {
	Streams   []StreamTruth
	Calls     []CallTruth
	Registers []RegisterTruth
	Frames    int // Ethernet frames generated (the packets of the pcap)
	SIP       int // SIP messages generated (a message may span several frames)
}

// StreamTruth is one RTP stream: one direction of one answered call.
type StreamTruth struct {
	CallID    string
	PT        uint8 // RTP payload type (0 PCMU, 8 PCMA)
	Direction int   // 0 caller → PBX, 1 PBX → caller
	SSRC      uint32
	Src, Dst  netip.AddrPort
	Sent      int // packets the sender produced, dropped ones included
	// Dropped packets never reach the capture: the pcap holds Sent-Dropped.
	// The first and last packet of a stream are never dropped, so a
	// sequence-number loss count equals Dropped exactly.
	Dropped int
}

// CallTruth is one INVITE dialog.
type CallTruth struct {
	CallID         string
	Caller, Called string         // From and To user parts
	CallerSIP      netip.AddrPort // where the caller's SIP comes from
	PBXSIP         netip.AddrPort
	Start          time.Time // the INVITE
	Connect        time.Time // the 200 OK to the INVITE; zero when not answered
	End            time.Time // the last SIP message of the dialog
	FinalCode      int       // final response to the INVITE: 200, 486, 487, 480
	// Bye is VoIPmonitor's cdr.bye: 3 = BYE and its 200 OK, 0 = no 200 OK to the INVITE.
	Bye       int
	WhoHanged string // "caller", "callee", or "" when there was no BYE
}

// RegisterTruth is one registration transaction (with its auth retry).
type RegisterTruth struct {
	CallID    string
	User      string // AOR user part
	Src       netip.AddrPort
	Time      time.Time // the first REGISTER
	Attempts  int       // REGISTER requests sent: 1, or 2 after a 401
	FinalCode int       // 200 or 403
}

// Received is the number of packets of s that are in the capture.
func (s StreamTruth) Received() int { return s.Sent - s.Dropped }

// TSV record kinds (first column) and their header lines.
const (
	tsvStream   = "stream"
	tsvCall     = "call"
	tsvRegister = "register"

	tsvStreamHeader   = "#stream\tcall_id\tpt\tdirection\tssrc\tsrc\tdst\tsent\tdropped"
	tsvCallHeader     = "#call\tcall_id\tcaller\tcalled\tcaller_sip\tpbx_sip\tstart\tconnect\tend\tfinal_code\tbye\twhohanged"
	tsvRegisterHeader = "#register\tcall_id\tuser\tsrc\ttime\tattempts\tfinal_code"
)

// WriteTSV writes t as tab-separated lines whose first column is the record
// kind ("stream", "call", "register"); each kind is preceded by a header line
// starting with '#'. Times are RFC 3339 UTC with nanoseconds, empty when zero.
// ReadTSV reads it back.
func (t *Truth) WriteTSV(w io.Writer) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintln(bw, tsvStreamHeader)
	for _, s := range t.Streams {
		fmt.Fprintf(bw, "%s\t%s\t%d\t%d\t0x%08X\t%s\t%s\t%d\t%d\n", tsvStream,
			s.CallID, s.PT, s.Direction, s.SSRC, s.Src, s.Dst, s.Sent, s.Dropped)
	}
	fmt.Fprintln(bw, tsvCallHeader)
	for _, c := range t.Calls {
		fmt.Fprintf(bw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%s\n", tsvCall,
			c.CallID, c.Caller, c.Called, c.CallerSIP, c.PBXSIP,
			fmtTime(c.Start), fmtTime(c.Connect), fmtTime(c.End), c.FinalCode, c.Bye, c.WhoHanged)
	}
	fmt.Fprintln(bw, tsvRegisterHeader)
	for _, r := range t.Registers {
		fmt.Fprintf(bw, "%s\t%s\t%s\t%s\t%s\t%d\t%d\n", tsvRegister,
			r.CallID, r.User, r.Src, fmtTime(r.Time), r.Attempts, r.FinalCode)
	}
	return bw.Flush()
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// ReadTSV parses what WriteTSV wrote. Lines starting with '#' and empty
// lines are skipped; Frames and SIP are not stored in the TSV and stay 0.
func ReadTSV(r io.Reader) (*Truth, error) {
	t := &Truth{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for line := 1; sc.Scan(); line++ {
		text := sc.Text()
		if text == "" || text[0] == '#' {
			continue
		}
		f := strings.Split(text, "\t")
		var err error
		switch f[0] {
		case tsvStream:
			err = parseStream(t, f)
		case tsvCall:
			err = parseCall(t, f)
		case tsvRegister:
			err = parseRegister(t, f)
		default:
			err = fmt.Errorf("unknown kind %q", f[0])
		}
		if err != nil {
			return nil, fmt.Errorf("%w: line %d: %w", ErrTruthFormat, line, err)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("simulate: read truth: %w", err)
	}
	return t, nil
}

// fieldParser collects the first error of a sequence of field conversions.
type fieldParser struct{ err error }

func (p *fieldParser) int(s string) int {
	v, err := strconv.Atoi(s)
	if err != nil && p.err == nil {
		p.err = err
	}
	return v
}

func (p *fieldParser) uint(s string, bitSize int) uint64 {
	v, err := strconv.ParseUint(s, 0, bitSize)
	if err != nil && p.err == nil {
		p.err = err
	}
	return v
}

func (p *fieldParser) addrPort(s string) netip.AddrPort {
	v, err := netip.ParseAddrPort(s)
	if err != nil && p.err == nil {
		p.err = err
	}
	return v
}

func (p *fieldParser) time(s string) time.Time {
	if s == "" {
		return time.Time{}
	}
	v, err := time.Parse(time.RFC3339Nano, s)
	if err != nil && p.err == nil {
		p.err = err
	}
	return v
}

func wantFields(f []string, n int) error {
	if len(f) != n {
		return fmt.Errorf("%s: %d fields, want %d", f[0], len(f), n)
	}
	return nil
}

func parseStream(t *Truth, f []string) error {
	if err := wantFields(f, 9); err != nil {
		return err
	}
	var p fieldParser
	s := StreamTruth{
		CallID: f[1], PT: uint8(p.uint(f[2], 7)), Direction: p.int(f[3]),
		SSRC: uint32(p.uint(f[4], 32)), Src: p.addrPort(f[5]), Dst: p.addrPort(f[6]),
		Sent: p.int(f[7]), Dropped: p.int(f[8]),
	}
	if p.err != nil {
		return p.err
	}
	t.Streams = append(t.Streams, s)
	return nil
}

func parseCall(t *Truth, f []string) error {
	if err := wantFields(f, 12); err != nil {
		return err
	}
	var p fieldParser
	c := CallTruth{
		CallID: f[1], Caller: f[2], Called: f[3],
		CallerSIP: p.addrPort(f[4]), PBXSIP: p.addrPort(f[5]),
		Start: p.time(f[6]), Connect: p.time(f[7]), End: p.time(f[8]),
		FinalCode: p.int(f[9]), Bye: p.int(f[10]), WhoHanged: f[11],
	}
	if p.err != nil {
		return p.err
	}
	t.Calls = append(t.Calls, c)
	return nil
}

func parseRegister(t *Truth, f []string) error {
	if err := wantFields(f, 7); err != nil {
		return err
	}
	var p fieldParser
	r := RegisterTruth{
		CallID: f[1], User: f[2], Src: p.addrPort(f[3]), Time: p.time(f[4]),
		Attempts: p.int(f[5]), FinalCode: p.int(f[6]),
	}
	if p.err != nil {
		return p.err
	}
	t.Registers = append(t.Registers, r)
	return nil
}
