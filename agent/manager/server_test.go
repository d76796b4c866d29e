package manager

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"pbx-agent/agent/manager/wire"
	"pbx-agent/sniffer/call"
	"pbx-agent/sniffer/call/calltest"
)

func TestPlaintextTCP(t *testing.T) {
	ts := startServer(t, nil)
	ref := exchange(t, "tcp", ts.addr, []byte("listcalls\r\n\r\n"), false)
	tests := []struct {
		name      string
		network   string
		in        string
		halfClose bool
		want      string // "" = same as the CRLF CRLF listcalls reply
	}{
		{name: "crlf crlf", network: "tcp", in: "listcalls\r\n\r\n"},
		{name: "crlf then idle", network: "tcp", in: "listcalls\r\n"},
		{name: "echo | nc (LF, idle)", network: "tcp", in: "listcalls\n"},
		{name: "echo | nc -q0 (LF, half-close)", network: "tcp", in: "listcalls\n", halfClose: true},
		{name: "no newline, half-close", network: "tcp", in: "listcalls", halfClose: true},
		{name: "text after CRLF CRLF dropped", network: "tcp", in: "getversion\r\n\r\nlistcalls\r\n", want: CompatVersion},
		{name: "unix socket", network: "unix", in: "listcalls\n"},
		{name: "getversion", network: "tcp", in: "getversion\r\n\r\n", want: CompatVersion},
		{name: "totalcalls", network: "tcp", in: "totalcalls\r\n\r\n", want: "3"},
		{name: "unknown", network: "tcp", in: "foobarbaz\r\n\r\n", want: "command not found\n"},
		{name: "legacy substring match", network: "tcp", in: "xx_getversion_yy\r\n\r\n", want: CompatVersion},
		{name: "support_aes", network: "tcp", in: "support_aes\r\n\r\n", want: "yes"},
		{name: "exists_aes_key without key", network: "tcp", in: "exists_aes_key\r\n\r\n", want: "no"},
		{name: "need_aes", network: "tcp", in: "need_aes\r\n\r\n", want: "need aes!\n"},
		{name: "reload", network: "tcp", in: "reload\r\n\r\n", want: "reload ok"},
		{name: "pausecall", network: "tcp", in: "pausecall 0x7f7484023980\r\n\r\n", want: "\x00empty"},
		{name: "pausecall bad ref", network: "tcp", in: "pausecall 0x1234\r\n\r\n", want: "Call id not found\n"},
		{name: "pausecall malformed", network: "tcp", in: "pausecall zz\r\n\r\n", want: "Bad/missing Call id\n"},
		{name: "pausecall decimal", network: "tcp", in: "pausecall 1234\r\n\r\n", want: "Bad/missing Call id\n"},
		{name: "listen disabled", network: "tcp", in: "listen 0x7f7484023980 x1\r\n\r\n", want: "liveaudio is disabled"},
		{name: "active_call_info bad", network: "tcp", in: "active_call_info 0xzz\r\n\r\n", want: "call not found"},
		{name: "getfile no spool", network: "tcp", in: "getfile x.pcap\r\n\r\n", want: "access denied"},
		{name: "listcalls bad json", network: "tcp", in: "listcalls {oops\r\n\r\n", want: "error: bad json parameters: invalid character 'o' looking for beginning of object key string\n"},
		{name: "binary garbage", network: "tcp", in: "\x00\xff\xfe\x01\x02\r\n\r\n", want: "command not found\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := ts.addr
			if tt.network == "unix" {
				addr = ts.sock
			}
			got := exchange(t, tt.network, addr, []byte(tt.in), tt.halfClose)
			want := []byte(tt.want)
			switch tt.want {
			case "":
				want = ref
			case "\x00empty":
				want = nil
			}
			if !bytes.Equal(got, want) {
				t.Errorf("reply = %.200q, want %.200q", got, want)
			}
		})
	}
	if !ts.calls.Paused(0x7f7484023980) {
		t.Error("pausecall did not reach the call table")
	}
}

func TestNotReadyClosesWithoutReply(t *testing.T) {
	ts := startServer(t, nil)
	ts.s.SetReady(false)
	if got := exchange(t, "tcp", ts.addr, []byte("getversion\r\n\r\n"), false); len(got) != 0 {
		t.Errorf("reply before ready = %q, want nothing", got)
	}
	ts.s.SetReady(true)
	if got := exchange(t, "tcp", ts.addr, []byte("getversion\r\n\r\n"), false); string(got) != CompatVersion {
		t.Errorf("reply after ready = %q", got)
	}
}

func TestUnixSocketMode(t *testing.T) {
	ts := startServer(t, nil)
	fi, err := os.Stat(ts.sock)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Type() != os.ModeSocket || fi.Mode().Perm() != 0o600 {
		t.Errorf("socket mode = %v, want socket 0600", fi.Mode())
	}
}

func TestManagerFile(t *testing.T) {
	k := testKey(t)
	ts := startServer(t, func(c *Config) { c.Keys = wire.StaticKey(k) })
	t.Setenv("TMPDIR", t.TempDir())
	path := filepath.Join(os.TempDir(), "rt.sock")
	aes := func(cmd string) string {
		return string(specDecrypt(t, k.Key[:], k.IV[:], exchange(t, "tcp", ts.addr, k.EncryptRequest([]byte(cmd+"\r\n\r\n")), false)))
	}
	tests := []struct {
		name, in, want string
	}{
		{"stop configured only", "manager_file stop", "the socket file was set by the managersocket option and cannot be stopped\n"},
		{"start", "manager_file start " + path, "OK (" + path + ")\n"},
		{"start again", "manager_file start " + path, "already running (" + path + ")\n"},
		{"stop", "manager_file stop", "OK\n"},
		{"stop again", "manager_file stop", "the socket file was set by the managersocket option and cannot be stopped\n"},
		{"usage", "manager_file", "usage: manager_file start [path] | stop\n"},
	}
	for _, tt := range tests {
		got := aes(tt.in)
		if got != tt.want {
			t.Errorf("%s: reply %q, want %q", tt.name, got, tt.want)
		}
		if tt.name == "start" {
			fi, err := os.Stat(path)
			if err != nil || fi.Mode().Perm() != 0o600 {
				t.Fatalf("runtime socket: %v %v", fi, err)
			}
			// Plaintext works on the socket although a key is set.
			if got := exchange(t, "unix", path, []byte("totalregisters\n"), true); string(got) != "0" {
				t.Errorf("runtime socket reply %q", got)
			}
		}
		if tt.name == "stop" {
			if _, err := os.Stat(path); !os.IsNotExist(err) {
				t.Errorf("socket file still there after stop: %v", err)
			}
		}
	}
	// Without a configured socket (and no key), stop reports "not running"; start with no path picks one.
	ts2 := startServer(t, func(c *Config) { c.Socket = "" })
	if got := exchange(t, "tcp", ts2.addr, []byte("manager_file stop\r\n\r\n"), false); string(got) != "not running" {
		t.Errorf("stop = %q", got)
	}
	got := string(exchange(t, "tcp", ts2.addr, []byte("manager_file start\r\n\r\n"), false))
	p, ok := strings.CutPrefix(got, "OK (")
	if !ok {
		t.Fatalf("start = %q", got)
	}
	p = strings.TrimSuffix(p, ")\n")
	if got := exchange(t, "unix", p, []byte("getversion\n"), true); string(got) != CompatVersion {
		t.Errorf("generated socket reply %q", got)
	}
	if got := exchange(t, "tcp", ts2.addr, []byte("manager_file stop\r\n\r\n"), false); string(got) != "OK\n" {
		t.Errorf("stop = %q", got)
	}
}

func TestAES(t *testing.T) {
	k := testKey(t)
	key, iv := k.Key[:], k.IV[:]
	ts := startServer(t, func(c *Config) { c.Keys = wire.StaticKey(k) })
	plainList := exchange(t, "unix", ts.sock, []byte("listcalls\r\n\r\n"), false)
	if !bytes.HasPrefix(plainList, []byte(`[["callreference"`)) {
		t.Fatalf("unix socket listcalls = %.80q", plainList)
	}
	zero := make([]byte, 16)
	tests := []struct {
		name    string
		in      []byte
		want    string
		encrypt bool // the reply is aes-framed
		rawWant []byte
	}{
		{name: "plaintext refused", in: []byte("listcalls\r\n\r\n"), want: "need aes!\n"},
		{name: "plaintext pausecall refused", in: []byte("pausecall 0x7f7484023980\r\n\r\n"), want: "need aes!\n"},
		{name: "exempt getversion", in: []byte("getversion\r\n\r\n"), want: CompatVersion},
		{name: "exempt totalcalls", in: []byte("totalcalls\r\n\r\n"), want: "3"},
		{name: "exempt support_aes", in: []byte("support_aes\r\n\r\n"), want: "yes"},
		{name: "exempt exists_aes_key", in: []byte("exists_aes_key\r\n\r\n"), want: "yes"},
		{name: "exempt sniffer_stat", in: []byte("sniffer_stat plain\r\n\r\n"), want: "\x00prefix:version=" + CompatVersion},
		{name: "unknown plaintext", in: []byte("foobarbaz\r\n\r\n"), want: "command not found\n"},
		{name: "aes listcalls", in: specEncrypt(key, iv, []byte("listcalls\r\n\r\n")), want: string(plainList), encrypt: true},
		{name: "aes listcalls no crlf", in: specEncrypt(key, iv, []byte("listcalls")), want: string(plainList), encrypt: true},
		{name: "aes getversion", in: specEncrypt(key, iv, []byte("getversion\r\n\r\n")), want: CompatVersion, encrypt: true},
		{name: "aes pausecall empty", in: specEncrypt(key, iv, []byte("pausecall 0x7f7484023980\r\n\r\n")), rawWant: []byte{}},
		{name: "aes wrong key", in: specEncrypt(zero, iv, []byte("listcalls\r\n\r\n")), want: "failed aes decrypt!\n", encrypt: true},
		{name: "aes truncated", in: []byte("aes-128-cbc:0123456789:sea"), want: "failed aes decrypt!\n", encrypt: true},
		{name: "aes unknown cipher name falls back", in: append([]byte("AES-999"), specEncrypt(key, iv, []byte("totalcalls"))[len("aes-128-cbc"):]...), want: "3", encrypt: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := exchange(t, "tcp", ts.addr, tt.in, false)
			if tt.rawWant != nil {
				if !bytes.Equal(got, tt.rawWant) {
					t.Errorf("reply %q, want %q", got, tt.rawWant)
				}
				return
			}
			if tt.encrypt {
				got = specDecrypt(t, key, iv, got)
			}
			if p, ok := strings.CutPrefix(tt.want, "\x00prefix:"); ok {
				if !bytes.HasPrefix(got, []byte(p)) {
					t.Errorf("reply %.100q, want prefix %q", got, p)
				}
				return
			}
			if string(got) != tt.want {
				t.Errorf("reply %.200q, want %.200q", got, tt.want)
			}
		})
	}
	// manager_enable_unencrypted = yes lets plaintext through.
	ts2 := startServer(t, func(c *Config) { c.Keys = wire.StaticKey(k); c.EnableUnencrypted = true })
	if got := exchange(t, "tcp", ts2.addr, []byte("listcalls\r\n\r\n"), false); !bytes.Equal(got, plainList) {
		t.Errorf("unencrypted enabled: %.80q", got)
	}
	// An AES request with no key anywhere gets the error in plaintext.
	ts3 := startServer(t, nil)
	if got := exchange(t, "tcp", ts3.addr, specEncrypt(key, iv, []byte("listcalls")), false); string(got) != "failed aes decrypt!\n" {
		t.Errorf("no key: %q", got)
	}
}

func TestGzipReplies(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "a.txt"), []byte("hello spool"), 0o644); err != nil {
		t.Fatal(err)
	}
	ts := startServer(t, func(c *Config) { c.SpoolDir = dir })
	plain := exchange(t, "tcp", ts.addr, []byte(`listcalls {"sort_dir":"desc"}`+"\r\n\r\n"), false)
	zipped := exchange(t, "tcp", ts.addr, []byte(`listcalls {"sort_dir":"desc","zip":"yes"}`+"\r\n\r\n"), false)
	for _, tt := range []struct {
		name      string
		got, want []byte
	}{
		{"listcalls", zipped, plain},
		{"getfile_zip", exchange(t, "tcp", ts.addr, []byte("getfile_zip a.txt\r\n\r\n"), false), []byte("hello spool")},
	} {
		zr, err := gzip.NewReader(bytes.NewReader(tt.got))
		if err != nil {
			t.Fatalf("%s: not gzip: %v (%.40q)", tt.name, err, tt.got)
		}
		un, err := io.ReadAll(zr)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(un, tt.want) {
			t.Errorf("%s: gunzipped %.80q, want %.80q", tt.name, un, tt.want)
		}
	}
}

func TestGetFile(t *testing.T) {
	root := t.TempDir()
	spool := filepath.Join(root, "spool")
	if err := os.MkdirAll(filepath.Join(spool, "2024-01-01", "00", "00", "SIP"), 0o755); err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.WriteFile(filepath.Join(spool, "2024-01-01", "00", "00", "SIP", "x.pcap"), []byte("PCAPDATA"), 0o644))
	must(os.WriteFile(filepath.Join(root, "secret"), []byte("SECRET"), 0o644))
	must(os.Symlink(filepath.Join(root, "secret"), filepath.Join(spool, "escape")))
	// Refused as the web downloads refuse them (spool.Open): a symlink that
	// stays in the spool, and a fifo (its open would wait for a writer).
	must(os.Symlink(filepath.Join("2024-01-01", "00", "00", "SIP", "x.pcap"), filepath.Join(spool, "inlink")))
	must(syscall.Mkfifo(filepath.Join(spool, "fifo"), 0o644))
	gz := filepath.Join(spool, "already.gz")
	var zb bytes.Buffer
	zw := gzip.NewWriter(&zb)
	_, _ = zw.Write([]byte("inner"))
	_ = zw.Close()
	must(os.WriteFile(gz, zb.Bytes(), 0o644))
	// A compressed spool pcap (pcap_dump_zip): two gzip members, as the
	// spool writes them.
	var pz bytes.Buffer
	for _, part := range []string{"COMPRESSED", "PCAP"} {
		zw := gzip.NewWriter(&pz)
		_, _ = zw.Write([]byte(part))
		_ = zw.Close()
	}
	must(os.WriteFile(filepath.Join(spool, "2024-01-01", "00", "00", "SIP", "y.pcap.gz"), pz.Bytes(), 0o644))
	ts := startServer(t, func(c *Config) { c.SpoolDir = spool })
	tests := []struct {
		name, in, want string
	}{
		{"compressed asked as pcap", "getfile 2024-01-01/00/00/SIP/y.pcap", "COMPRESSEDPCAP"},
		{"compressed asked as pcap.gz", "getfile 2024-01-01/00/00/SIP/y.pcap.gz", pz.String()},
		{"compressed zip passes through", "getfile_zip 2024-01-01/00/00/SIP/y.pcap", pz.String()},
		{"compressed exists", "file_exists 2024-01-01/00/00/SIP/y.pcap", strconv.Itoa(pz.Len())},
		{"relative", "getfile 2024-01-01/00/00/SIP/x.pcap", "PCAPDATA"},
		{"absolute inside", "getfile " + filepath.Join(spool, "2024-01-01/00/00/SIP/x.pcap"), "PCAPDATA"},
		{"dotdot", "getfile ../secret", "access denied"},
		{"dotdot inner", "getfile 2024-01-01/../../secret", "access denied"},
		{"absolute outside", "getfile " + filepath.Join(root, "secret"), "access denied"},
		{"etc passwd", "getfile /etc/passwd", "access denied"},
		{"symlink escape", "getfile escape", "error: cannot open file escape"},
		{"symlink inside", "getfile inlink", "error: cannot open file inlink"},
		{"fifo", "getfile fifo", "error: cannot open file fifo"},
		{"symlinks and fifo do not exist", "file_exists inlink|escape|fifo", "not_exists;not_exists;not_exists"},
		{"missing", "getfile nope.pcap", "error: cannot open file nope.pcap"},
		{"directory", "getfile 2024-01-01", "error: cannot open file 2024-01-01"},
		{"no arg", "getfile", "access denied"},
		{"zip of gzip passes through", "getfile_zip already.gz", zb.String()},
		{"file_exists", "file_exists 2024-01-01/00/00/SIP/x.pcap|nope|../secret", "8;not_exists;permission_denied"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := exchange(t, "tcp", ts.addr, []byte(tt.in+"\r\n\r\n"), false); string(got) != tt.want {
				t.Errorf("reply %q, want %q", got, tt.want)
			}
		})
	}
}

// fakeAudio yields one 800-byte block per ReadPCM call.
type fakeAudio struct{ opened, closed int }

type fakeStream struct {
	a *fakeAudio
	n byte
}

func (f *fakeAudio) OpenAudio(_ context.Context, ref uint64) (AudioStream, error) {
	if ref != 0x7f7484023980 {
		return nil, call.ErrNoCall
	}
	f.opened++
	return &fakeStream{a: f}, nil
}

func (s *fakeStream) ReadPCM(dst []byte) ([]byte, error) {
	s.n++
	return append(dst, bytes.Repeat([]byte{s.n}, ListenBlockBytes)...), nil
}

func (s *fakeStream) Close() error { s.a.closed++; return nil }

func TestListen(t *testing.T) {
	fa := &fakeAudio{}
	ts := startServer(t, func(c *Config) { c.Audio = fa })
	steps := []struct {
		in, want string
	}{
		{"readaudio 0x7f7484023980 x1", "error: worker not found"},
		{"listen 0x1234 x1", "call not found"},
		{"listen 0x7f7484023980 x1", "success"},
		{"listen 140138407672192 x2", "call already listening"},
		{"readaudio 0x7f7484023980 x1", "\x01"},
		{"readaudio 0x7f7484023980 x2", "\x02"}, // blocks 1 (pulled for x1) and 2
		{"readaudio 0x7f7484023980 x2", "\x03"},
		{"readaudio 0x7f7484023980 nobody", "error: client of worker not found"},
		{"readaudio 0x1234 x1", "error: call not found"},
		{"listen_stop 0x7f7484023980 x1", ""},
		{"readaudio 0x7f7484023980 x2", "\x04"},
		{"listen_stop 0x7f7484023980 x2", ""},
		{"readaudio 0x7f7484023980 x1", "error: worker not found"},
	}
	for i, st := range steps {
		got := exchange(t, "tcp", ts.addr, []byte(st.in+"\r\n\r\n"), false)
		if len(st.want) == 1 {
			// PCM: blocks of 800 bytes; the last block carries the marker.
			if len(got) == 0 || len(got)%ListenBlockBytes != 0 || got[len(got)-1] != st.want[0] {
				t.Errorf("step %d %q: %d bytes ending %v", i, st.in, len(got), got[max(0, len(got)-1):])
			}
			continue
		}
		if string(got) != st.want {
			t.Errorf("step %d %q: %q, want %q", i, st.in, got, st.want)
		}
	}
	if fa.opened != 1 || fa.closed != 1 {
		t.Errorf("opened %d closed %d, want 1 1", fa.opened, fa.closed)
	}
}

// TestListenClientsBounded: listen ids are bounded on all calls together.
// Each id holds up to 10 s of unread PCM until it idles out (16 kB/s), and
// a client could add ids without end: 3,000 ids on one call held 284 MB
// after 6 s. The id past the bound is refused, known ids still join, and
// a stopped id frees its slot.
func TestListenClientsBounded(t *testing.T) {
	fa := &fakeAudio{}
	ts := startServer(t, func(c *Config) { c.Audio = fa })
	const ref = "0x7f7484023980"
	for i := range listenMaxClients {
		got := string(exchange(t, "unix", ts.sock, []byte(fmt.Sprintf("listen %s c%d\r\n\r\n", ref, i)), false))
		if got != listenSuccess && got != listenJoined {
			t.Fatalf("listen id %d: %q", i, got)
		}
	}
	steps := []struct {
		name, in, want string
	}{
		{"one more id", "listen " + ref + " extra", "error: manager: too many listeners: 256 on all calls"},
		{"a known id", "listen " + ref + " c7", listenJoined},
		{"stop one", "listen_stop " + ref + " c7", ""},
		{"its slot is free", "listen " + ref + " extra", listenJoined},
		{"full again", "listen " + ref + " extra2", "error: manager: too many listeners: 256 on all calls"},
	}
	for _, st := range steps {
		if got := string(exchange(t, "unix", ts.sock, []byte(st.in+"\r\n\r\n"), false)); got != st.want {
			t.Errorf("%s: %q: got %q, want %q", st.name, st.in, got, st.want)
		}
	}
	if _, _, refused := ts.s.listen.counts(); refused != 2 {
		t.Errorf("refused %d, want 2", refused)
	}
	ts.s.listen.mu.Lock()
	n := ts.s.listen.clients
	ts.s.listen.mu.Unlock()
	if n != listenMaxClients {
		t.Errorf("clients %d, want %d", n, listenMaxClients)
	}
}

func TestHelpAndStat(t *testing.T) {
	ts := startServer(t, nil)
	help := string(exchange(t, "tcp", ts.addr, []byte("help\r\n\r\n"), false))
	if !strings.HasPrefix(help, "List of commands:\n\n") || !strings.Contains(help, "\nlistcalls ... lists active calls.\n\n") {
		t.Errorf("help = %.200q", help)
	}
	if strings.Contains(help, "need_aes") {
		t.Error("help lists hidden commands")
	}
	if got := string(exchange(t, "tcp", ts.addr, []byte("help getversion\r\n\r\n"), false)); got != "getversion ... return the version of the sniffer.\n\n" {
		t.Errorf("help getversion = %q", got)
	}
	stat := exchange(t, "tcp", ts.addr, []byte("sniffer_stat\r\n\r\n"), false)
	var m map[string]any
	if err := json.Unmarshal(stat, &m); err != nil {
		t.Fatalf("sniffer_stat not JSON: %v %q", err, stat)
	}
	if m["version"] != CompatVersion || m["initializing"] != false {
		t.Errorf("sniffer_stat = %s", stat)
	}
}

func TestRequestBounds(t *testing.T) {
	ts := startServer(t, func(c *Config) {
		c.ReadTimeout = 300 * time.Millisecond
		// Longer than ReadTimeout: a loaded machine pausing the trickling
		// writer must not turn the endless request into an idle-ended one.
		c.IdleWait = 5 * time.Second
		c.MaxRequestBytes = 64 << 10
	})
	t.Run("1 MiB line", func(t *testing.T) {
		c := ts.dial(t)
		go func() { _, _ = c.Write(bytes.Repeat([]byte("A"), 1<<20)) }()
		got, _ := io.ReadAll(c) // closed (EOF or reset), no reply
		if len(got) != 0 {
			t.Errorf("reply to 1 MiB request: %.40q", got)
		}
	})
	t.Run("never ending request", func(t *testing.T) {
		c := ts.dial(t)
		stop := make(chan struct{})
		defer close(stop)
		go func() { // one byte every 20 ms: never idle, never complete
			for {
				select {
				case <-stop:
					return
				case <-time.After(20 * time.Millisecond):
					if _, err := c.Write([]byte("x")); err != nil {
						return
					}
				}
			}
		}()
		got, _ := io.ReadAll(c)
		if len(got) != 0 {
			t.Errorf("reply to endless request: %q", got)
		}
	})
	t.Run("silent client", func(t *testing.T) {
		c := ts.dial(t)
		if got, err := io.ReadAll(c); len(got) != 0 || err != nil {
			t.Errorf("silent client: %q %v", got, err)
		}
	})
	if got := exchange(t, "tcp", ts.addr, []byte("getversion\r\n\r\n"), false); string(got) != CompatVersion {
		t.Errorf("server hurt by bad clients: %q", got)
	}
	c := ts.s.Counters()
	if c.TooLarge != 1 || c.TimedOut != 2 {
		t.Errorf("counters %+v, want TooLarge 1 TimedOut 2", c)
	}
}

func TestShutdownWaitsForReply(t *testing.T) {
	s := New(Config{Calls: &calltest.Table{Calls: recordedCalls()}, IdleWait: 50 * time.Millisecond})
	s.SetReady(true)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("totalcalls\r\n")); err != nil { // completes after the idle wait
		t.Fatal(err)
	}
	for s.Counters().Active == 0 {
		time.Sleep(time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	got, _ := io.ReadAll(c)
	if string(got) != "3" {
		t.Errorf("in-flight reply = %q, want 3", got)
	}
	if err := <-done; err != ErrServerClosed {
		t.Errorf("Serve = %v, want ErrServerClosed", err)
	}
	if _, err := net.Dial("tcp", ln.Addr().String()); err == nil {
		t.Error("still accepting after Shutdown")
	}
}

func TestGenerateAESKey(t *testing.T) {
	k, err := wire.GenerateAESKey(bytes.NewReader(bytes.Repeat([]byte{7}, 32)))
	if err != nil {
		t.Fatal(err)
	}
	kb, ivb := k.Base64()
	if kb != base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 16)) || ivb != kb {
		t.Errorf("Base64 = %q %q", kb, ivb)
	}
	if _, err := wire.GenerateAESKey(bytes.NewReader(nil)); err == nil {
		t.Error("wire.GenerateAESKey with empty reader: no error")
	}
}

// TestPauseNamesTheRequester pins issue 16 item 8 for the manager API: a
// pausecall carries who sent it — the TCP client's address, or on the unix
// socket the peer's pid and user — and the interface, to the call table
// (which logs and audits it).
func TestPauseNamesTheRequester(t *testing.T) {
	ts := startServer(t, nil)
	for _, network := range []string{"tcp", "unix"} {
		addr := ts.addr
		if network == "unix" {
			addr = ts.sock
		}
		if got := exchange(t, network, addr, []byte("pausecall 0x7f7484023980\r\n\r\n"), false); len(got) != 0 {
			t.Fatalf("%s pausecall: %q", network, got)
		}
	}
	by := ts.calls.Requesters()
	if len(by) != 2 {
		t.Fatalf("requesters %+v, want 2", by)
	}
	if by[0].Via != "manager-tcp" || !strings.HasPrefix(by[0].Source, "127.0.0.1:") || by[0].User == "" {
		t.Errorf("TCP pausecall requester %+v", by[0])
	}
	me, _ := user.Current()
	if by[1].Via != "manager-socket" || by[1].Source != fmt.Sprintf("unix pid=%d uid=%s", os.Getpid(), me.Uid) || by[1].User != me.Username {
		t.Errorf("unix socket pausecall requester %+v (want pid %d, user %v)", by[1], os.Getpid(), me)
	}
}

// TestManagerFileHardening pins issue 17 item 6: with an AES key,
// `manager_file` over plaintext TCP is refused (need aes!); even encrypted,
// it only creates a new socket directly in the temp directory — another
// program's socket is neither replaced nor, on stop, deleted.
func TestManagerFileHardening(t *testing.T) {
	k := testKey(t)
	ts := startServer(t, func(c *Config) { c.Keys = wire.StaticKey(k); c.Socket = "" })
	t.Setenv("TMPDIR", t.TempDir())
	aes := func(cmd string) string {
		return string(specDecrypt(t, k.Key[:], k.IV[:], exchange(t, "tcp", ts.addr, k.EncryptRequest([]byte(cmd+"\r\n\r\n")), false)))
	}
	other := filepath.Join(os.TempDir(), "other.sock")
	ln, err := net.Listen("unix", other)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if got := string(exchange(t, "tcp", ts.addr, []byte("manager_file start "+filepath.Join(os.TempDir(), "p.sock")+"\r\n\r\n"), false)); got != "need aes!\n" {
		t.Errorf("plaintext manager_file with a key: %q, want need aes!", got)
	}
	if _, err := os.Lstat(filepath.Join(os.TempDir(), "p.sock")); err == nil {
		t.Error("plaintext manager_file created a socket")
	}
	for _, p := range []string{other, filepath.Join(t.TempDir(), "elsewhere.sock"), "relative.sock", os.TempDir() + "/sub/../x.sock/.."} {
		if got := aes("manager_file start " + p); !strings.HasPrefix(got, "error: manager: socket path refused") {
			t.Errorf("start %s: %q, want refused", p, got)
		}
	}
	if fi, err := os.Lstat(other); err != nil || fi.Mode().Type() != os.ModeSocket {
		t.Fatalf("the other program's socket was touched: %v", err)
	}
	// A socket we made, replaced behind our back by someone else's: stop leaves it.
	mine := filepath.Join(os.TempDir(), "mine.sock")
	if got := aes("manager_file start " + mine); got != "OK ("+mine+")\n" {
		t.Fatalf("start: %q", got)
	}
	if err := os.Remove(mine); err != nil {
		t.Fatal(err)
	}
	ln2, err := net.Listen("unix", mine)
	if err != nil {
		t.Fatal(err)
	}
	defer ln2.Close()
	if got := aes("manager_file stop"); got != "OK\n" {
		t.Errorf("stop: %q", got)
	}
	if _, err := os.Lstat(mine); err != nil {
		t.Errorf("stop deleted a socket it did not make: %v", err)
	}
}

// TestIdleConnectionsPerSource pins issue 17 item 14: 130 idle
// connections from one address no longer take every slot (at most
// MaxConnsPerSource each; the rest are closed at once), a client from
// another address is served meanwhile, and an idle connection is closed
// after FirstByteTimeout rather than held for the whole ReadTimeout.
func TestIdleConnectionsPerSource(t *testing.T) {
	ts := startServer(t, func(c *Config) { c.FirstByteTimeout = 300 * time.Millisecond; c.ReadTimeout = 4 * time.Second })
	var idle []net.Conn
	defer func() {
		for _, c := range idle {
			c.Close()
		}
	}()
	for range 130 {
		c, err := net.DialTimeout("tcp", ts.addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		idle = append(idle, c)
	}
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", ts.addr)
	if err != nil {
		t.Skip("no 127.0.0.2 on this host:", err)
	}
	_ = c.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := c.Write([]byte("totalcalls\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(c)
	c.Close()
	if err != nil || string(got) != "3" {
		t.Errorf("client from another address while 130 idle ones are open: %q, %v", got, err)
	}
	if n := ts.s.Counters(); n.Refused < 130-DefaultMaxConnsPerSource {
		t.Errorf("refused %d connections, want at least %d (one address holds at most %d)", n.Refused, 130-DefaultMaxConnsPerSource, DefaultMaxConnsPerSource)
	}
	// The admitted idle connections are closed by the server well before ReadTimeout.
	_ = idle[0].SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := idle[0].Read(make([]byte, 1)); err == nil || isTimeout(err) {
		t.Errorf("an idle connection is still open 2 s later (err %v), want it closed after the first-byte timeout", err)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
