package asteriskconf

import (
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"strings"
	"testing"
	"testing/fstest"

	"pbx-agent/internal/testkit"
)

func TestParseLines(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    string // compact rendering of the items
		wantErr error
	}{
		{name: "var", in: "[s]\na = b\n", want: "[s] a=b"},
		{name: "object", in: "[s]\na => b\n", want: "[s] a=>b"},
		{name: "append op", in: "[s]\na += b\n", want: "[s] a+=b"},
		{name: "no spaces", in: "[s]\na=b=c\n", want: "[s] a=b=c"},
		{name: "comment stripped", in: "[s] ; hi\na = b ; c\n", want: "[s] a=b"},
		{name: "escaped semicolon", in: "[s]\na = x\\;y ; z\n", want: "[s] a=x;y"},
		{name: "block comment", in: "[s]\n;-- a = 1\nb = 2 --;\nc = 3\n", want: "[s] c=3"},
		{name: "nested block", in: "[s]\n;-- ;-- x --; y = 1 --; c = 3\n", want: "[s] c=3"},
		{name: "template opts", in: "[t](!,base,other)\n", want: "[t](! base other)"},
		{name: "append section", in: "[t](+)\n", want: "[t](+)"},
		{name: "include quoted", in: "#include \"a b.conf\"\n", want: "#include(a b.conf)"},
		{name: "include angle", in: "#tryinclude <x.conf>\n", want: "#tryinclude(x.conf)"},
		{name: "crlf", in: "[s]\r\na = b\r\n", want: "[s] a=b"},
		{name: "empty value", in: "[s]\na =\n", want: "[s] a="},
		{name: "no bracket", in: "[s\n", wantErr: ErrSyntax},
		{name: "no paren", in: "[s](!\n", wantErr: ErrSyntax},
		{name: "junk after header", in: "[s] x\n", wantErr: ErrSyntax},
		{name: "no equal", in: "[s]\nabc\n", wantErr: ErrSyntax},
		{name: "no name", in: "[s]\n= v\n", wantErr: ErrSyntax},
		{name: "include no arg", in: "#include\n", wantErr: ErrSyntax},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, err := Parse(strings.NewReader(tc.in), "t.conf")
			if testkit.WantErr(t, err, tc.wantErr) {
				if !strings.HasPrefix(err.Error(), "t.conf:") {
					t.Errorf("error %q lacks file:line", err)
				}
				return
			}
			if got := render(f); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func render(f *File) string {
	var parts []string
	for _, it := range f.Items {
		switch {
		case it.Header != nil:
			s := "[" + it.Header.Name + "]"
			var o []string
			if it.Header.Template {
				o = append(o, "!")
			}
			if it.Header.Append {
				o = append(o, "+")
			}
			o = append(o, it.Header.Inherits...)
			if len(o) > 0 {
				s += "(" + strings.Join(o, " ") + ")"
			}
			parts = append(parts, s)
		case it.Var != nil:
			parts = append(parts, it.Var.Name+string(it.Var.Op)+it.Var.Value)
		case it.Directive != nil:
			parts = append(parts, "#"+it.Directive.Name+"("+it.Directive.Arg+")")
		}
	}
	return strings.Join(parts, " ")
}

func TestLoadErrors(t *testing.T) {
	fsys := fstest.MapFS{
		"loop.conf":    {Data: []byte("[a]\n#include loop2.conf\n")},
		"loop2.conf":   {Data: []byte("#include loop.conf\n")},
		"outside.conf": {Data: []byte("#include ../etc/passwd\n")},
		"nested.conf":  {Data: []byte("[a]\n#include inc.conf\n")},
		"inc.conf":     {Data: []byte("x = 1\n[b\n")},
	}
	tests := []struct {
		name    string
		in      string
		wantErr error
		wantPos string
	}{
		{name: "loop", in: "loop.conf", wantErr: ErrInclude, wantPos: "loop2.conf:1:"},
		{name: "outside", in: "outside.conf", wantErr: ErrInclude, wantPos: "outside.conf:1:"},
		{name: "error inside include", in: "nested.conf", wantErr: ErrSyntax, wantPos: "inc.conf:2:"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(fsys, tc.in)
			if !errors.Is(err, tc.wantErr) || !strings.HasPrefix(err.Error(), tc.wantPos) {
				t.Fatalf("err = %v, want %v at %s", err, tc.wantErr, tc.wantPos)
			}
		})
	}
}

func TestSelectUser(t *testing.T) {
	conf := `[general]
enabled = yes
[weak]
secret = a
read = cdr
write = call
[remote]
secret = b
deny = 0.0.0.0/0
permit = 10.0.0.0/8
read = all
write = all
[nosecret]
read = all
write = all
[good]
secret = c
read = call,system
write = reporting
`
	m, err := NewManagerFromString(t, conf)
	if err != nil {
		t.Fatal(err)
	}
	lo := netip.MustParseAddr("127.0.0.1")
	tests := []struct {
		name      string
		need      Need
		want      string
		wantInErr []string
	}{
		{name: "first usable", need: AgentNeed("", lo), want: "good"},
		{name: "named", need: AgentNeed("remote", netip.MustParseAddr("10.9.9.9")), want: "remote"},
		{name: "named refused", need: AgentNeed("remote", lo), wantInErr: []string{"[remote] 127.0.0.1 refused by \"deny 0.0.0.0/0\""}},
		{name: "named unknown", need: AgentNeed("nobody", lo), wantInErr: []string{"[nobody] not defined"}},
		{name: "none", need: Need{Addr: lo, Read: ClassSecurity}, wantInErr: []string{
			"[weak] read lacks security", "[remote] 127.0.0.1 refused", "[nosecret] has no secret", "[good] read lacks security"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u, err := m.SelectUser(tc.need)
			if tc.wantInErr != nil {
				var nu *NoUserError
				if !errors.As(err, &nu) || !errors.Is(err, ErrNoUser) {
					t.Fatalf("err = %v, want NoUserError", err)
				}
				for _, s := range tc.wantInErr {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("error %q lacks %q", err, s)
					}
				}
				return
			}
			if err != nil || u.Name != tc.want {
				t.Fatalf("got %v, %v; want %s", u, err, tc.want)
			}
		})
	}
}

func NewManagerFromString(t *testing.T, s string) (*Manager, error) {
	t.Helper()
	cfg, err := Load(fstest.MapFS{"manager.conf": {Data: []byte(s)}}, "manager.conf")
	if err != nil {
		return nil, err
	}
	return NewManager(cfg, nil)
}

func TestEventAllowed(t *testing.T) {
	m, err := NewManagerFromString(t, `[u]
secret = x
eventfilter = !Event: (VarSet|Newexten)
[inc]
secret = y
eventfilter(action(include),name(Newchannel),header(Channel),method(starts_with)) = PJSIP/
eventfilter = Event: Hangup
[none]
secret = z
`)
	if err != nil {
		t.Fatal(err)
	}
	ev := func(name, channel string) (string, string, func(string) (string, bool)) {
		text := "Event: " + name + "\r\nChannel: " + channel + "\r\n"
		return name, text, func(h string) (string, bool) {
			if strings.EqualFold(h, "channel") {
				return channel, true
			}
			return "", false
		}
	}
	tests := []struct {
		name, user, event, channel string
		want                       bool
	}{
		{"exclude hits", "u", "VarSet", "PJSIP/a", false},
		{"exclude misses", "u", "Newchannel", "PJSIP/a", true},
		{"include by header", "inc", "Newchannel", "PJSIP/a", true},
		{"include header miss", "inc", "Newchannel", "SIP/a", false},
		{"include legacy regex", "inc", "Hangup", "SIP/a", true},
		{"include nothing", "inc", "VarSet", "PJSIP/a", false},
		{"no filters", "none", "VarSet", "x", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n, text, h := ev(tc.event, tc.channel)
			if got := m.User(tc.user).EventAllowed(n, text, h); got != tc.want {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"[general]\nenabled = yes\n",
		"[t](!)\ndeny=0.0.0.0/0\n[u](t)\nsecret=x\\;y ; c\n",
		";-- block\n[x] --;\n[a](+)\nb += c\n",
		"#include \"x.conf\"\n#tryinclude <y*.conf>\n",
		"[s\nfoo\n= bar\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := Parse(strings.NewReader(string(data)), "fuzz.conf")
		if err != nil {
			var pe *PosError
			if !errors.As(err, &pe) {
				t.Fatalf("error without position: %v", err)
			}
			return
		}
		for _, it := range file.Items {
			if it.Line <= 0 {
				t.Fatalf("item without line: %+v", it)
			}
		}
		cfg, err := Load(fstest.MapFS{"m.conf": {Data: data}}, "m.conf")
		if err == nil {
			_, _ = NewManager(cfg, nil)
		}
	})
}

func BenchmarkLoadManager(b *testing.B) {
	data := []byte(strings.Repeat("[t](!)\ndeny=0.0.0.0/0\npermit=127.0.0.1/32\n", 1) +
		"[general]\nenabled=yes\n" + strings.Repeat("[u](t)\nsecret=x\nread=all\nwrite=call,system\n", 50))
	fsys := fstest.MapFS{"manager.conf": {Data: data}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := LoadManager(fsys, "manager.conf", ""); err != nil {
			b.Fatal(err)
		}
	}
}

// countingFS fails the test once more than limit files were opened.
type countingFS struct {
	fs.FS
	t     *testing.T
	n     int
	limit int
}

func (c *countingFS) Open(name string) (fs.File, error) {
	if c.n++; c.n > c.limit {
		c.t.Fatalf("%d files opened: the include expansion is unbounded", c.n)
	}
	return c.FS.Open(name)
}

// TestIncludeFanOut pins issue 17 item 15: a tree of files each including
// the next level ten times (10^8 loads at depth 8) or a big file included
// many times stops at MaxIncludedFiles / MaxIncludedBytes with ErrInclude.
func TestIncludeFanOut(t *testing.T) {
	fanout := fstest.MapFS{"top.conf": {Data: []byte("[a]\n" + strings.Repeat("#include l1.conf\n", 10))}}
	for i := 1; i < 8; i++ {
		fanout[fmt.Sprintf("l%d.conf", i)] = &fstest.MapFile{Data: []byte(strings.Repeat(fmt.Sprintf("#include l%d.conf\n", i+1), 10))}
	}
	fanout["l8.conf"] = &fstest.MapFile{Data: []byte("x = 1\n")}
	big := fstest.MapFS{
		"top.conf": {Data: []byte("[a]\n" + strings.Repeat("#include big.conf\n", 100))},
		"big.conf": {Data: []byte(strings.Repeat("; padding padding padding padding padding padding\n", 20000))}, // 1 MB
	}
	for name, fsys := range map[string]fstest.MapFS{"fan-out": fanout, "bytes": big} {
		t.Run(name, func(t *testing.T) {
			_, err := Load(&countingFS{FS: fsys, t: t, limit: 2 * (MaxIncludedFiles + 1)}, "top.conf")
			if !errors.Is(err, ErrInclude) || !strings.Contains(err.Error(), "in all") {
				t.Fatalf("err = %v, want ErrInclude (in all)", err)
			}
		})
	}
}
