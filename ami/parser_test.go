package ami

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"pbx-agent/sniffer/fixture"
)

func parseAll(t testing.TB, in string, lim Limits, chunk int) ([]Message, []error) {
	p := NewParser(lim)
	var msgs []Message
	var errs []error
	feed := func(b string) {
		if _, err := p.Write([]byte(b)); err != nil {
			t.Fatalf("write: %v", err)
		}
		for {
			m, err := p.Next()
			if err == io.ErrUnexpectedEOF {
				return
			}
			if err != nil {
				errs = append(errs, err)
				continue
			}
			msgs = append(msgs, m)
		}
	}
	if chunk <= 0 {
		feed(in)
	} else {
		for i := 0; i < len(in); i += chunk {
			feed(in[i:min(len(in), i+chunk)])
		}
	}
	return msgs, errs
}

func TestParser(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		lim     Limits
		want    []string // per message: "k=v;k=v" or "banner:..." or "...|body"
		wantErr int      // protocol errors expected
	}{
		{name: "banner then response", in: "Asterisk Call Manager/9.0.0\r\nResponse: Success\r\nActionID: 1\r\n\r\n",
			want: []string{"banner:Asterisk Call Manager/9.0.0", "Response=Success;ActionID=1"}},
		{name: "bare LF", in: "Event: X\nA: b\n\n", want: []string{"Event=X;A=b"}},
		{name: "empty value and no space", in: "Event: X\r\nAccountCode: \r\nK:v\r\n\r\n", want: []string{"Event=X;AccountCode=;K=v"}},
		{name: "repeated keys kept", in: "Response: Success\r\nOutput: a\r\nOutput: b: c\r\n\r\n", want: []string{"Response=Success;Output=a;Output=b: c"}},
		{name: "blank lines between", in: "\r\n\r\nEvent: A\r\n\r\n\r\nEvent: B\r\n\r\n", want: []string{"Event=A", "Event=B"}},
		{name: "follows body", in: "Response: Follows\r\nPrivilege: Command\r\nActionID: 7\r\nline one\nChannel: x (not a header)\n\n--END COMMAND--\r\n\r\nEvent: Next\r\n\r\n",
			want: []string{"Response=Follows;Privilege=Command;ActionID=7|line one\nChannel: x (not a header)\n", "Event=Next"}},
		{name: "follows end on same line", in: "Response: Follows\r\nActionID: 8\r\nout--END COMMAND--\r\n\r\n",
			want: []string{"Response=Follows;ActionID=8|out"}},
		{name: "line without colon skipped", in: "Event: A\r\ngarbage\r\nX: y\r\n\r\nEvent: B\r\n\r\n", want: []string{"Event=B"}, wantErr: 1},
		{name: "line too long", in: "Event: A\r\nK: " + strings.Repeat("x", 100) + "\r\n\r\nEvent: B\r\n\r\n", lim: Limits{MaxLine: 50},
			want: []string{"Event=B"}, wantErr: 1},
		{name: "too many fields", in: "Event: A\r\nA: 1\r\nB: 2\r\n\r\nEvent: C\r\n\r\n", lim: Limits{MaxFields: 2},
			want: []string{"Event=C"}, wantErr: 1},
		{name: "message too large", in: "Event: A\r\n" + strings.Repeat("K: v\r\n", 40) + "\r\nEvent: C\r\n\r\n", lim: Limits{MaxMessage: 100},
			want: []string{"Event=C"}, wantErr: 1},
		{name: "no banner mid-stream", in: "Asterisk Call Manager/1.0\r\n", want: []string{"banner:Asterisk Call Manager/1.0"}},
	}
	for _, tc := range tests {
		for _, chunk := range []int{0, 1, 7} {
			msgs, errs := parseAll(t, tc.in, tc.lim, chunk)
			var got []string
			for _, m := range msgs {
				got = append(got, render(m))
			}
			if strings.Join(got, "\n#\n") != strings.Join(tc.want, "\n#\n") {
				t.Errorf("%s (chunk %d): got %q, want %q", tc.name, chunk, got, tc.want)
			}
			if len(errs) != tc.wantErr {
				t.Errorf("%s (chunk %d): %d errors %v, want %d", tc.name, chunk, len(errs), errs, tc.wantErr)
			}
			for _, err := range errs {
				var pe *ProtocolError
				if !errors.As(err, &pe) || !errors.Is(err, ErrProtocol) {
					t.Errorf("%s: error %v is not a ProtocolError", tc.name, err)
				}
			}
		}
	}
}

func render(m Message) string {
	if m.Banner != "" {
		return "banner:" + m.Banner
	}
	var kv []string
	for _, f := range m.Fields {
		kv = append(kv, f.Key+"="+f.Value)
	}
	s := strings.Join(kv, ";")
	if m.Body != "" {
		s += "|" + m.Body
	}
	return s
}

func TestLookup(t *testing.T) {
	m := Message{Fields: []Field{{"Event", "VarSet"}, {"ActionID", "a"}, {"ChanVariable", "X=1"}, {"ChanVariable", "Y=2"}}}
	if m.Get("actionid") != "a" || m.Get("ACTIONID") != "a" || m.Kind() != KindEvent {
		t.Errorf("case-insensitive lookup failed: %+v", m)
	}
	if v := m.Values("chanvariable"); len(v) != 2 || v[1] != "Y=2" {
		t.Errorf("Values = %v", v)
	}
	if _, ok := m.Lookup("missing"); ok {
		t.Error("Lookup found a missing key")
	}
}

func TestRecordedStreamsParse(t *testing.T) {
	files, _ := filepath.Glob(fixture.Repo(t, "testdata", "ami", "*.raw"))
	if len(files) == 0 {
		t.Fatal("no testdata/ami/*.raw")
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		msgs, errs := parseAll(t, string(data), Limits{}, 0)
		if len(errs) != 0 {
			t.Errorf("%s: %v", filepath.Base(f), errs)
		}
		if want := strings.Count(string(data), "\n\n") + strings.Count(string(data), "\r\n\r\n"); len(msgs) == 0 || len(msgs) > want+1 {
			t.Errorf("%s: %d packets", filepath.Base(f), len(msgs))
		}
		for _, m := range msgs {
			if m.Banner == "" && m.Kind() == KindUnknown && !strings.HasSuffix(f, ".sent.raw") {
				t.Errorf("%s: unclassified packet %q", filepath.Base(f), m.String())
			}
		}
	}
}

func FuzzParser(f *testing.F) {
	for _, name := range []string{"ami-coreshowchannels.raw", "ami-auth-md5-ok.raw", "ami-status.raw", "ami-getvar-chansip-callid.raw"} {
		if b, err := os.ReadFile(filepath.Join("..", "testdata", "ami", name)); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("Response: Follows\r\nActionID: 1\r\nx\n--END COMMAND--\r\n\r\n"))
	f.Add([]byte("Asterisk Call Manager/9.0.0\r\nEvent: A\n:\n\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p := NewParser(Limits{MaxLine: 256, MaxFields: 16, MaxMessage: 2048})
		for i := 0; i < len(data); i += 13 {
			if _, err := p.Write(data[i:min(len(data), i+13)]); err != nil {
				t.Fatalf("write: %v", err)
			}
			for {
				m, err := p.Next()
				if err == io.ErrUnexpectedEOF {
					break
				}
				if err != nil {
					if !errors.Is(err, ErrProtocol) {
						t.Fatalf("non-protocol error %v", err)
					}
					continue
				}
				if len(m.Fields) > 16 {
					t.Fatalf("%d fields over the limit", len(m.Fields))
				}
				for _, fl := range m.Fields {
					if fl.Key == "" || strings.ContainsAny(fl.Key, ":\n") {
						t.Fatalf("bad key %q", fl.Key)
					}
				}
			}
		}
		if p.Buffered() > 2*2048+256 {
			t.Fatalf("backlog %d", p.Buffered())
		}
	})
}

func BenchmarkParseEvents(b *testing.B) {
	data, err := os.ReadFile(filepath.Join("..", "testdata", "ami", "ami-call-answered.raw"))
	if err != nil {
		b.Skip(err)
	}
	n := 0
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	p := NewParser(Limits{})
	for b.Loop() {
		p.Reset()
		p.Write(data)
		for {
			_, err := p.Next()
			if err == io.ErrUnexpectedEOF {
				break
			}
			n++
		}
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(n)/float64(b.N), "events/op")
}

// FuzzParserSegmentation: the packets and errors a stream gives do not
// depend on how it is cut into writes (a byte at a time, 7 bytes, a
// packet's worth).
// An error quotes what was buffered of its line when it was found, so only
// its reason is compared.
func FuzzParserSegmentation(f *testing.F) {
	f.Add([]byte("Response: Follows\r\nActionID: 1\r\nx\n--END COMMAND--\r\n\r\n"))
	f.Add([]byte("Asterisk Call Manager/9.0.0\r\nEvent: A\r\nB: c\r\n\r\nEvent: D\n:\n\n"))
	f.Add([]byte("Event: X\r\n" + strings.Repeat("K: v\r\n", 20) + "\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		lim := Limits{MaxLine: 64, MaxFields: 8, MaxMessage: 512}
		text := func(ms []Message, errs []error) []string {
			var out []string
			for _, m := range ms {
				out = append(out, m.Banner+"|"+m.String())
			}
			for _, err := range errs {
				var pe *ProtocolError
				if !errors.As(err, &pe) {
					t.Fatalf("non-protocol error %v", err)
				}
				out = append(out, "error: "+pe.Reason) // its line is what was buffered when it was found
			}
			return out
		}
		whole := text(parseAll(t, string(data), lim, lim.MaxMessage)) // a write may not pass the backlog bound
		for _, chunk := range []int{1, 7} {
			if got := text(parseAll(t, string(data), lim, chunk)); !slices.Equal(got, whole) {
				t.Fatalf("in writes of %d bytes:\n%q\nwhole:\n%q", chunk, got, whole)
			}
		}
	})
}

// TestParserResumesScan: a packet arriving a byte at a time is scanned
// once: each Next starts where the last one stopped (the lines checked so
// far), not at the packet's start (a 232 KB packet a byte at a time cost
// the AMI reader 0.6 s of CPU).
func TestParserResumesScan(t *testing.T) {
	in := "Event: Newchannel\r\n" + strings.Repeat("Variable: x=0123456789\r\n", 500) + "\r\n"
	p := NewParser(Limits{})
	lineEnd := 0 // offset after the last complete line written so far
	for i := range len(in) {
		if _, err := p.Write([]byte{in[i]}); err != nil {
			t.Fatal(err)
		}
		m, err := p.Next()
		if i == len(in)-1 {
			if err != nil || m.Get("Event") != "Newchannel" || len(m.Fields) != 501 {
				t.Fatalf("last byte: %v, %d fields", err, len(m.Fields))
			}
			break
		}
		if err != io.ErrUnexpectedEOF {
			t.Fatalf("byte %d: %v", i, err)
		}
		if in[i] == '\n' {
			lineEnd = i + 1
		}
		if !p.scanned || p.scan.end != lineEnd {
			t.Fatalf("byte %d: the scan stands at %d (kept %v), want %d", i, p.scan.end, p.scanned, lineEnd)
		}
	}
}

func BenchmarkParserTrickle(b *testing.B) {
	in := []byte("Event: Newchannel\r\n" + strings.Repeat("Variable: x=0123456789\r\n", 9000) + "\r\n") // 216 KB
	b.SetBytes(int64(len(in)))
	p := NewParser(Limits{})
	for b.Loop() {
		p.Reset()
		for i := range in {
			_, _ = p.Write(in[i : i+1])
			_, _ = p.Next()
		}
	}
}
