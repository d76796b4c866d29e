package manager

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"errors"
	"io"
	"net"
	"net/netip"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"pbx-agent/agent/manager/wire"
	"pbx-agent/internal/testkit"
	"pbx-agent/sniffer/call"
	"pbx-agent/sniffer/call/calltest"
	"pbx-agent/sniffer/rtp"
)

func usec(us int64) time.Time { return time.UnixMicro(us).UTC() }

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

// recordedCalls are the three gensip calls that were active when
// voipmonitor-ref/manager/plain/listcalls.raw was recorded, with the same
// call references (the real sniffer's pointers) and figures.
func recordedCalls() []call.CDR {
	type spec struct {
		ref                  uint64
		n                    int
		ms                   int
		payload              int
		aRecv, aLost         int
		aAvg, aMax           float64
		bRecv                int
		bAvg, bMax           float64
		aFirst, aLast        int64
		bFirst, bLast, aSSRC int64
		bSSRC                int64
	}
	specs := []spec{
		{0x7f7484023980, 2, 20, 8, 60, 0, 0.927710, 1.393748, 59, 1.173592, 1.644919,
			1704067200942184, 1704067202162311, 1704067200953628, 1704067202150834, 1258916094, 887265776},
		{0x7f7484017cb0, 1, 10, 0, 60, 1, 0.936508, 1.612218, 60, 0.859448, 1.374758,
			1704067200932000, 1704067202152000, 1704067200943000, 1704067202140000, 11, 12},
		{0x7f748400af20, 0, 0, 8, 61, 0, 1.177915, 1.654376, 61, 0.984007, 1.741434,
			1704067200922000, 1704067202142000, 1704067200933000, 1704067202130000, 21, 22},
	}
	var out []call.CDR
	for _, s := range specs {
		n := string(rune('0' + s.n))
		cport, pport := strconv.Itoa(20000+2*s.n), strconv.Itoa(10000+2*s.n)
		caller := "10.1.0." + n
		start := time.Date(2024, 1, 1, 0, 0, 0, s.ms*int(time.Millisecond), time.UTC)
		out = append(out, call.CDR{
			CallID:             "gensip-1-" + n + "@192.0.2.10",
			CallRef:            s.ref,
			CallDate:           start,
			ConnectTime:        start.Add(900 * time.Millisecond),
			CallEnd:            usec(s.aLast),
			Caller:             "100" + n,
			Called:             "500" + n,
			CallerDomain:       caller,
			CalledDomain:       "192.0.2.10",
			CallerIP:           netip.MustParseAddr(caller),
			CalledIP:           netip.MustParseAddr("192.0.2.10"),
			CallerPort:         5060,
			CalledPort:         5060,
			LastSIPResponseNum: 200,
			LastSIPResponse:    "200 OK",
			Bye:                call.ByeAnsweredNoBye,
			CallerUA:           "gensip",
			Active:             true,
			Streams: []rtp.Summary{
				{Src: ap(caller + ":" + cport), Dst: ap("192.0.2.10:" + pport), SSRC: uint32(s.aSSRC), Payload: s.payload,
					FirstTime: usec(s.aFirst), LastTime: usec(s.aLast), Received: s.aRecv, Lost: s.aLost,
					AvgJitter: s.aAvg, MaxJitter: s.aMax, MOSF1: 4.5, MOSF2: 4.5, MOSAdapt: 4.5, Caller: true},
				{Src: ap("192.0.2.10:" + pport), Dst: ap(caller + ":" + cport), SSRC: uint32(s.bSSRC), Payload: s.payload,
					FirstTime: usec(s.bFirst), LastTime: usec(s.bLast), Received: s.bRecv,
					AvgJitter: s.bAvg, MaxJitter: s.bMax, MOSF1: 4.5, MOSF2: 4.5, MOSAdapt: 4.5},
			},
		})
	}
	return out
}

// testKey is the throw-away key of the recorded AES run.
const (
	testKeyB64 = "GeyrAEoZkjLiVYljWm40Rg=="
	testIVB64  = "6vmjUAjvXCUoAIBTpcDC/A=="
)

func testKey(t testing.TB) wire.AESKey {
	t.Helper()
	k, err := wire.ParseAESKey(testKeyB64, testIVB64)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

type testServer struct {
	s     *Server
	addr  string // TCP
	sock  string // unix socket
	calls *calltest.Table
}

// startServer runs a Server on 127.0.0.1:0 and a unix socket in a temp dir.
// dial connects to the server's TCP port for the test (closed at its end),
// with 5 s for the whole conversation.
func (ts *testServer) dial(t testing.TB) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	return c
}

func startServer(t testing.TB, mod func(*Config)) *testServer {
	t.Helper()
	fc := &calltest.Table{Calls: recordedCalls()}
	cfg := Config{
		Addr:        "127.0.0.1:0",
		Socket:      filepath.Join(t.TempDir(), "vm_manager_socket"),
		Calls:       fc,
		SensorID:    1,
		Location:    time.UTC,
		IdleWait:    50 * time.Millisecond,
		ReadTimeout: 2 * time.Second,
	}
	if mod != nil {
		mod(&cfg)
	}
	s := New(cfg)
	s.SetReady(true)
	stop := testkit.Run(t, s.ListenAndServe)
	t.Cleanup(func() {
		if err := stop(); err != nil && !errors.Is(err, ErrServerClosed) {
			t.Errorf("ListenAndServe: %v", err)
		}
	})
	deadline := time.Now().Add(5 * time.Second)
	for s.Addr() == nil {
		if time.Now().After(deadline) {
			t.Fatal("server did not bind")
		}
		time.Sleep(time.Millisecond)
	}
	return &testServer{s: s, addr: s.Addr().String(), sock: cfg.Socket, calls: fc}
}

// exchange is an independent client written from the spec: connect, write
// the request bytes, optionally half-close, read until the server closes.
func exchange(t testing.TB, network, addr string, req []byte, halfClose bool) []byte {
	t.Helper()
	c, err := net.DialTimeout(network, addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s %s: %v", network, addr, err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write(req); err != nil {
		t.Fatalf("write: %v", err)
	}
	if halfClose {
		switch cc := c.(type) {
		case *net.TCPConn:
			_ = cc.CloseWrite()
		case *net.UnixConn:
			_ = cc.CloseWrite()
		}
	}
	var buf bytes.Buffer
	if _, err := io.Copy(&buf, c); err != nil {
		t.Fatalf("read reply: %v", err)
	}
	return buf.Bytes()
}

// specEncrypt / specDecrypt: the client side of spec §1.2 written with
// crypto/aes directly (not the server's code).
func specEncrypt(key, iv []byte, pt []byte) []byte {
	b, _ := aes.NewCipher(key)
	pad := 16 - len(pt)%16
	buf := append(append([]byte(nil), pt...), bytes.Repeat([]byte{byte(pad)}, pad)...)
	cipher.NewCBCEncrypter(b, iv).CryptBlocks(buf, buf)
	return append(append([]byte("aes-128-cbc:"), buf...), ":sea"...)
}

func specDecrypt(t testing.TB, key, iv, reply []byte) []byte {
	t.Helper()
	ct, ok := bytes.CutPrefix(reply, []byte("aes:"))
	if !ok {
		t.Fatalf("reply is not aes-framed: %q", reply)
	}
	if len(ct)%16 != 0 || len(ct) == 0 {
		t.Fatalf("ciphertext length %d", len(ct))
	}
	b, _ := aes.NewCipher(key)
	pt := make([]byte, len(ct))
	cipher.NewCBCDecrypter(b, iv).CryptBlocks(pt, ct)
	pad := int(pt[len(pt)-1])
	if pad < 1 || pad > 16 {
		t.Fatalf("bad padding %d", pad)
	}
	return pt[:len(pt)-pad]
}

func recordedRegisters() []call.Register {
	t0 := time.Date(2024, 1, 1, 0, 0, 5, 0, time.UTC)
	return []call.Register{
		{Time: t0, CallID: "reg-1@10.1.0.1", FromNum: "1001", FromDomain: "pbx.example", ToNum: "1001", ToDomain: "pbx.example",
			ContactNum: "1001", ContactDomain: "10.1.0.1:5060", DigestUsername: "1001", DigestRealm: "asterisk",
			CallerIP: netip.MustParseAddr("10.1.0.1"), CalledIP: netip.MustParseAddr("192.0.2.10"), CallerPort: 5060, CalledPort: 5060,
			Expires: 3600, State: call.RegOK, UA: "baresip"},
		{Time: t0.Add(time.Second), CallID: "reg-2@10.1.0.2", FromNum: "1002", FromDomain: "pbx.example", ToNum: "1002", ToDomain: "pbx.example",
			CallerIP: netip.MustParseAddr("10.1.0.2"), CalledIP: netip.MustParseAddr("192.0.2.10"), CallerPort: 5062, CalledPort: 5060,
			State: call.RegFailed, FailedAttempts: 3, LastResponseNum: 403, UA: "friendly-scanner \"x\""},
	}
}
