package manager

import (
	"bytes"
	"context"
	"io"
	"net/netip"
	"testing"
	"time"

	"pbx-agent/agent/manager/wire"
	"pbx-agent/sniffer/call/calltest"
)

func TestRequestComplete(t *testing.T) {
	k := wire.AESKey{}
	enc := k.EncryptRequest([]byte("listcalls"))
	tests := []struct {
		name  string
		in    string
		first bool
		want  bool
	}{
		{"crlf crlf", "listcalls\r\n\r\n", true, true},
		{"crlf only, first read", "listcalls\r\n", true, false},
		{"crlf only, later read", "listcalls\r\n", false, true},
		{"lf only", "listcalls\n", false, false},
		{"nothing", "listc", true, false},
		{"aes complete", string(enc), true, true},
		{"aes without trailer", string(enc[:len(enc)-4]), true, false},
		{"aes trailer too early", "aes-128-cbc:abc:sea", true, false},
		{"aes prefix colon too far", "aes" + string(bytes.Repeat([]byte("x"), 30)) + ":0123456789abcdef:sea", true, false},
		{"AES upper case", "AES-128-CBC:0123456789abcdef:sea", true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := requestComplete([]byte(tt.in), tt.first); got != tt.want {
				t.Errorf("requestComplete(%q, %v) = %v, want %v", tt.in, tt.first, got, tt.want)
			}
		})
	}
}

func TestParseRequest(t *testing.T) {
	tests := []struct {
		name      string
		in        string
		wantLine  string
		encrypted bool
		wantCT    string
	}{
		{name: "crlf", in: "listcalls\r\n\r\n", wantLine: "listcalls"},
		{name: "args", in: "listcalls {\"limit\":1}\r\n\r\n", wantLine: "listcalls {\"limit\":1}"},
		{name: "after crlfcrlf dropped", in: "a\r\n\r\nb", wantLine: "a"},
		{name: "cut at first cr", in: "a\rb\n", wantLine: "a"},
		{name: "lf", in: "getversion\n", wantLine: "getversion"},
		{name: "aes", in: "aes-128-cbc:0123456789abcdef:sea", encrypted: true, wantCT: "0123456789abcdef"},
		{name: "aes trailer missing", in: "aes-128-cbc:0123456789abcdef", encrypted: true, wantCT: "0123456789abcdef"},
		{name: "aes sea inside ciphertext", in: "aes-128-cbc:0123:sea89abcdef:sea", encrypted: true, wantCT: "0123:sea89abcdef"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := parseRequest([]byte(tt.in))
			if r.encrypted != tt.encrypted || string(r.line) != tt.wantLine || string(r.ciphertext) != tt.wantCT {
				t.Errorf("parseRequest(%q) = %+v", tt.in, r)
			}
		})
	}
}

func TestParseRef(t *testing.T) {
	tests := []struct {
		in      string
		want    uint64
		wantOK  bool
		hexOnly bool // pausecall's parser
	}{
		{"0x7f7484023980", 0x7f7484023980, true, true},
		{"140138407672192", 140138407672192, true, false},
		{"7f7484023980", 0x7f7484023980, true, false},
		{"0xzz", 0, false, true},
		{"", 0, false, true},
		{"0x12zz", 0x12, true, true}, // sscanf stops at the first non-hex
		{"0x0", 0, false, false},
	}
	for _, tt := range tests {
		if tt.hexOnly {
			got, ok := parseHexRef(tt.in)
			if ok != tt.wantOK || got != tt.want {
				t.Errorf("parseHexRef(%q) = %#x %v", tt.in, got, ok)
			}
			continue
		}
		got, ok := parseRef(tt.in)
		if ok != tt.wantOK || got != tt.want {
			t.Errorf("parseRef(%q) = %#x %v", tt.in, got, ok)
		}
	}
}

// FuzzRequest feeds arbitrary request bytes through the framing, the AES
// decryption and the dispatcher: no panic, and every reply is bounded.
func FuzzRequest(f *testing.F) {
	k := wire.AESKey{Key: [16]byte{1}, IV: [16]byte{2}}
	for _, s := range []string{
		"listcalls\r\n\r\n", "listcalls {\"limit\":\"1\",\"sort_field\":\"caller\",\"sort_dir\":\"asc\"}\r\n\r\n",
		"listcalls {\"filter\":[\"10.1\"],\"zip\":\"yes\"}", "pausecall 0x7f7484023980", "active_call_info {\"callreference\":\"0x7f7484023980\"}",
		"listen 0x7f7484023980 x1", "readaudio 1 x", "getfile ../../etc/passwd", "file_exists a|b|../c", "help listcalls",
		"listregisters {\"states\":\"OK,Failed\",\"limit\":1}", "manager_file", "sniffer_stat plain", "\x00\xff",
		string(k.EncryptRequest([]byte("listcalls\r\n\r\n"))), "aes-128-cbc:0123456789abcdef:sea",
		string(sealedRequest(k, "listcalls")), wire.SealedName + ":AAAA\r\n",
	} {
		f.Add([]byte(s))
	}
	fc := &calltest.Table{Calls: recordedCalls(), Regs: recordedRegisters()}
	// manager_file would create sockets at fuzzed paths: replaced by a stub.
	s := New(Config{Calls: fc, Keys: wire.StaticKey(k), SpoolDir: f.TempDir(),
		Commands: map[string]Command{"manager_file": {Run: text("stub"), NoAES: true}}})
	f.Fuzz(func(t *testing.T, in []byte) {
		_ = requestComplete(in, true)
		_ = requestComplete(in, false)
		r := parseRequest(in)
		if r.encrypted || len(r.line) > 0 {
			var out bytes.Buffer
			_ = s.handle(context.Background(), &out, r, true, netip.MustParseAddr("192.0.2.1"))
			if out.Len() > 1<<20 {
				t.Fatalf("reply of %d bytes", out.Len())
			}
		}
		_ = s.Run(context.Background(), io.Discard, string(commandLine(in)))
	})
}

func sealedRequest(k wire.AESKey, cmd string) []byte {
	req, _ := k.SealRequest([]byte(cmd+"\r\n"), time.Now())
	return req
}
