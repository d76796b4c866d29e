package sensors

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"

	"pbx-agent/agent/cdr"
	"pbx-agent/agent/manager/client"
	"pbx-agent/internal/testkit"
	"pbx-agent/sniffer/call"
	"pbx-agent/webui"
	"pbx-agent/webui/player"
)

// site is a multi-sensor deployment on loopback: one MariaDB, sensor 1
// (plaintext), sensor 2 (AES, its key in `system` as manager_key_2),
// sensor 3 (accepts and never answers), sensor 4 (answers, but its
// heartbeat is stale), and a front end (id 9, no capture) serving the web
// APIs through httptest.
type site struct {
	db       *sql.DB
	s1, s2   *fakeSensor
	s4       *fakeSensor
	client   *Client
	web      *httptest.Server
	cdrID    uint64 // the CDR of sensor 2 whose files are in s2's spool
	callID   string
	sipPkts  int
	rtpPkts  int
	wav      []byte
	timeout  time.Duration
	started  time.Time
	hungAddr string
	// hungAccepted is the most connections sensor 3 held at once.
	hungAccepted func() int
}

func newSite(t *testing.T, timeout time.Duration) *site {
	t.Helper()
	dsn := scratchDB(t)
	st := &site{timeout: timeout, started: time.Now()}
	now := time.Now()
	k2 := mustKey(t)
	st.s1 = startSensor(t, 1, genCalls(1, 3, now), nil)
	st.s2 = startSensor(t, 2, genCalls(2, 4, now), &k2)
	st.s4 = startSensor(t, 4, genCalls(4, 2, now), nil)
	st.hungAddr, st.hungAccepted = startHung(t)

	// Sensor 2 wrote a CDR (agent/cdr creates the whole schema).
	cd := call.CDR{
		CallID: "remote-call-1@sensor2", CallDate: time.Date(2025, 3, 4, 10, 20, 30, 500e6, time.UTC),
		ConnectTime: time.Date(2025, 3, 4, 10, 20, 33, 0, time.UTC), CallEnd: time.Date(2025, 3, 4, 10, 21, 30, 0, time.UTC),
		Caller: "1001", Called: "2002", CallerIP: netip.MustParseAddr("10.0.2.1"), CalledIP: netip.MustParseAddr("192.0.2.2"),
		CallerPort: 5060, CalledPort: 5060, LastSIPResponseNum: 200, LastSIPResponse: "200 OK", Bye: call.ByeOK,
	}
	w, err := cdr.New(cdr.Options{DSN: dsn, IDSensor: 2,
		QueueDir: t.TempDir(), FlushInterval: 10 * time.Millisecond, RetryInterval: 50 * time.Millisecond,
		PartitionCheck: time.Hour, DrainTimeout: 5 * time.Second}, testLogger())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- w.Run(ctx) }()
	if err := w.Enqueue(&cd); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	cancel()
	<-errc
	w.Close()

	db := openDB(t, dsn)
	st.db = db
	var base string
	if err := db.QueryRow("SELECT c.ID, n.fbasename FROM cdr c JOIN cdr_next n ON n.cdr_ID = c.ID WHERE c.id_sensor = 2").Scan(&st.cdrID, &base); err != nil {
		t.Fatalf("sensor 2's CDR: %v", err)
	}
	st.callID = cd.CallID
	sp := webui.DirSpool{Root: st.s2.spool, Location: time.UTC}
	st.sipPkts = writePcap(t, sp, webui.SpoolFile{Kind: webui.KindSIP, CallDate: cd.CallDate, Basename: base}, 5060, 2, cd.CallDate)
	st.rtpPkts = writePcap(t, sp, webui.SpoolFile{Kind: webui.KindRTP, CallDate: cd.CallDate, Basename: base}, 10000, 3, cd.CallDate.Add(time.Second))
	st.wav = []byte("RIFF\x24\x00\x00\x00WAVEfmt fake recording of sensor 2")
	wp, _ := sp.Path(webui.SpoolFile{Kind: webui.KindAudio, CallDate: cd.CallDate, Basename: base})
	if err := os.MkdirAll(filepath.Dir(wp), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(wp, st.wav, 0o644); err != nil {
		t.Fatal(err)
	}

	// The rows the sensors' registries keep.
	register(t, db, 1, st.s1.addr, nil)
	register(t, db, 2, st.s2.addr, &k2)
	register(t, db, 3, st.hungAddr, nil)
	register(t, db, 4, st.s4.addr, nil)
	if _, err := db.Exec("UPDATE sensors SET agent_heartbeat = UTC_TIMESTAMP() - INTERVAL 10 MINUTE WHERE id_sensor = 4"); err != nil {
		t.Fatal(err)
	}
	putSystemKey(t, db, "manager_key_2", k2)

	// The front end.
	reg, err := New(Options{DB: db, Self: Self{ID: 9, Name: "frontend", Host: "127.0.0.1"}, ListTTL: time.Nanosecond, Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	if err := reg.Register(context.Background()); err != nil {
		t.Fatal(err)
	}
	// The hung sensor stays cooling for the whole test (the default 5 s
	// may pass between two subtests on a loaded machine).
	st.client = NewClient(ClientOptions{Dir: reg, Keys: &Keys{DB: db}, Timeout: timeout, Cooldown: time.Hour, Logger: testLogger()})
	h := webui.New(webui.Options{DB: db, DisableAuth: true, SensorID: 9, Remote: WebRemote{st.client},
		Spool: Spool{Client: st.client}, Logger: testLogger()})
	st.web = httptest.NewServer(h)
	t.Cleanup(st.web.Close)
	return st
}

// writePcap writes n UDP packets from port as a pcap at f's spool path.
func writePcap(t *testing.T, sp webui.DirSpool, f webui.SpoolFile, port, n int, at time.Time) int {
	t.Helper()
	p, err := sp.Path(f)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	pw := pcapgo.NewWriter(&buf)
	if err := pw.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeIPv4}
		ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: net.IP{10, 0, 2, 1}, DstIP: net.IP{192, 0, 2, 2}}
		udp := &layers.UDP{SrcPort: layers.UDPPort(port), DstPort: layers.UDPPort(port)}
		_ = udp.SetNetworkLayerForChecksum(ip)
		sb := gopacket.NewSerializeBuffer()
		if err := gopacket.SerializeLayers(sb, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true},
			eth, ip, udp, gopacket.Payload(fmt.Sprintf("packet %d of %s", i, f.Kind))); err != nil {
			t.Fatal(err)
		}
		data := sb.Bytes()
		ci := gopacket.CaptureInfo{Timestamp: at.Add(time.Duration(i) * 20 * time.Millisecond), CaptureLength: len(data), Length: len(data)}
		if err := pw.WritePacket(ci, data); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return n
}

// api posts one api.php request to the front end.
func (st *site) api(t *testing.T, task string, params any) (int, []byte, http.Header) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"task": task, "params": params})
	return testkit.HTTP(t).Read(http.Post(st.web.URL+"/php/api.php", "application/json", bytes.NewReader(body)))
}

type activeReply struct {
	Success bool   `json:"success"`
	Total   string `json:"total"`
	Results []struct {
		CallRef  string  `json:"callreference"`
		CallID   string  `json:"callid"`
		Sensor   *string `json:"id_sensor"`
		Connect  *string `json:"connect_duration"`
		CallerIP *string `json:"callerip"`
	} `json:"results"`
	Sensors []struct {
		ID     string `json:"id_sensor"`
		Status string `json:"status"`
		Calls  string `json:"calls"`
		Error  string `json:"error"`
	} `json:"sensors"`
}

// siteTimeout bounds each command to a sensor in these tests: the hung
// sensor is reported after it, and the healthy ones (dial, key look-up,
// AES, reply) must answer within it on a loaded machine too.
const siteTimeout = DefaultTimeout

func TestFrontEnd(t *testing.T) {
	st := newSite(t, siteTimeout)

	t.Run("listActiveCalls merges sensors", func(t *testing.T) {
		code, b, _ := st.api(t, "listActiveCalls", map[string]any{})
		if code != http.StatusOK {
			t.Fatalf("status %d: %s", code, b)
		}
		var r activeReply
		if err := json.Unmarshal(b, &r); err != nil {
			t.Fatalf("%v: %s", err, b)
		}
		perSensor := map[string]int{}
		for _, c := range r.Results {
			if c.Sensor == nil || c.CallerIP == nil || !strings.HasPrefix(c.CallRef, "0x") {
				t.Fatalf("incomplete row in %s", b)
			}
			perSensor[*c.Sensor]++
		}
		if perSensor["1"] != 3 || perSensor["2"] != 4 || len(perSensor) != 2 || r.Total != "7" {
			t.Errorf("calls per sensor %v total %s, want 1:3 2:4 total 7", perSensor, r.Total)
		}
		status := map[string]string{}
		for _, s := range r.Sensors {
			status[s.ID] = s.Status
		}
		want := map[string]string{"1": "ok", "2": "ok", "3": "timeout", "4": "offline"}
		for id, w := range want {
			if status[id] != w {
				t.Errorf("sensor %s status %q, want %q (all: %s)", id, status[id], w, b)
			}
		}
		if _, ok := status["9"]; ok {
			t.Errorf("the front end asked itself: %s", b)
		}
		if n := st.s4.srv.Counters().Accepted; n != 0 {
			t.Errorf("offline sensor 4 was contacted %d times", n)
		}
	})

	t.Run("hung sensor in cooldown is reported without waiting", func(t *testing.T) {
		before := st.client.Counters()
		code, b, _ := st.api(t, "listActiveCalls", map[string]any{})
		if code != http.StatusOK {
			t.Fatalf("status %d: %s", code, b)
		}
		var r activeReply
		_ = json.Unmarshal(b, &r)
		after := st.client.Counters()
		if after.Skipped-before.Skipped != 2 { // 3 (cooling) and 4 (offline)
			t.Errorf("skipped %d sensors, want 2: %s", after.Skipped-before.Skipped, b)
		}
		if r.Total != "7" {
			t.Errorf("total %s, want 7", r.Total)
		}
	})

	t.Run("listActiveCalls of one sensor", func(t *testing.T) {
		code, b, _ := st.api(t, "listActiveCalls", map[string]any{"sensorId": "2"})
		var r activeReply
		_ = json.Unmarshal(b, &r)
		if code != http.StatusOK || r.Total != "4" || len(r.Sensors) != 1 || r.Sensors[0].ID != "2" {
			t.Errorf("status %d: %s", code, b)
		}
		code, b, _ = st.api(t, "listActiveCalls", map[string]any{"sensorId": "77"})
		if code != http.StatusNotFound {
			t.Errorf("unknown sensor: status %d, want 404: %s", code, b)
		}
	})

	t.Run("handleActiveCall goes to the owning sensor with AES", func(t *testing.T) {
		ref := st.s2.calls.Calls[1].CallRef
		before := st.s2.srv.Counters()
		code, b, _ := st.api(t, "handleActiveCall", map[string]any{"command": "pausecall", "callRef": fmt.Sprintf("0x%x", ref), "sensorId": "2"})
		if code != http.StatusOK {
			t.Fatalf("pausecall: status %d: %s", code, b)
		}
		if on := st.s2.calls.Paused(ref); !on {
			t.Errorf("call 0x%x not paused on sensor 2", ref)
		}
		after := st.s2.srv.Counters()
		if after.NeedAES != before.NeedAES || after.DecryptFailed != before.DecryptFailed {
			t.Errorf("sensor 2 refused the request: %+v", after)
		}
		code, b, _ = st.api(t, "handleActiveCall", map[string]any{"command": "unpausecall", "callRef": fmt.Sprintf("0x%x", ref), "sensorId": "2"})
		if on := st.s2.calls.Paused(ref); code != http.StatusOK || on {
			t.Errorf("unpausecall: status %d paused %v: %s", code, on, b)
		}
		// A reference sensor 2 does not have.
		code, b, _ = st.api(t, "handleActiveCall", map[string]any{"command": "pausecall", "callRef": "0xdead", "sensorId": "2"})
		if code != http.StatusNotFound {
			t.Errorf("unknown call: status %d, want 404: %s", code, b)
		}
		// The offline sensor is not contacted.
		code, b, _ = st.api(t, "handleActiveCall", map[string]any{"command": "pausecall", "callRef": "0x1", "sensorId": "4"})
		if code != http.StatusServiceUnavailable || st.s4.srv.Counters().Accepted != 0 {
			t.Errorf("offline sensor: status %d, want 503: %s", code, b)
		}
		// Sensor 1's call is not on sensor 2.
		code, _, _ = st.api(t, "handleActiveCall", map[string]any{"command": "pausecall", "callRef": fmt.Sprintf("0x%x", st.s1.calls.Calls[0].CallRef), "sensorId": "2"})
		if code != http.StatusNotFound {
			t.Errorf("call of another sensor: status %d, want 404", code)
		}
	})

	t.Run("live listening target of sensor 2", func(t *testing.T) {
		addr, key, err := st.client.Target(context.Background(), 2)
		// Sensor 2 registered as a pbx-agent: its key comes with the
		// authenticated scheme (issue 17 item 1), a VoIPmonitor sniffer's would not.
		if err != nil || addr != st.s2.addr || key == nil || key.Key != st.s2.key.Key || key.IV != st.s2.key.IV || !key.Sealed {
			t.Errorf("Target(2) = %q %v %v, want %q and sensor 2's key, sealed", addr, key != nil, err, st.s2.addr)
		}
		if addr, key, err := st.client.Target(context.Background(), 1); err != nil || addr != st.s1.addr || key != nil {
			t.Errorf("Target(1) = %q %v %v, want %q in plaintext", addr, key != nil, err, st.s1.addr)
		}
		if _, _, err := st.client.Target(context.Background(), 4); !errors.Is(err, ErrOffline) {
			t.Errorf("Target(4) err = %v, want ErrOffline", err)
		}
		// The target answers a manager command with that key.
		b, err := client.Exchange(context.Background(), "tcp", st.s2.addr, "getversion", key)
		if err != nil || len(b) == 0 {
			t.Errorf("getversion through the target: %q %v", b, err)
		}
		// The player's lookup: the same target; unknown → player.ErrUnknownSensor, offline → not unknown.
		for _, tc := range []struct {
			name        string
			id          int
			wantAddr    string
			wantKey     bool
			wantUnknown bool
			wantErr     error
		}{
			{name: "aes sensor", id: 2, wantAddr: st.s2.addr, wantKey: true},
			{name: "plaintext sensor", id: 1, wantAddr: st.s1.addr},
			{name: "offline sensor", id: 4, wantErr: ErrOffline},
			{name: "unknown sensor", id: 77, wantUnknown: true, wantErr: ErrUnknownSensor},
		} {
			pr, err := st.client.PlayerLookup(context.Background(), tc.id)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) || errors.Is(err, player.ErrUnknownSensor) != tc.wantUnknown {
					t.Errorf("%s: PlayerLookup err = %v, want %v (player.ErrUnknownSensor %v)", tc.name, err, tc.wantErr, tc.wantUnknown)
				}
				continue
			}
			rm, _ := pr.(ManagerRemote)
			if err != nil || rm.Addr != tc.wantAddr || (rm.Key != nil) != tc.wantKey {
				t.Errorf("%s: PlayerLookup = %+v %v, want %s key %v", tc.name, rm, err, tc.wantAddr, tc.wantKey)
			}
		}
	})

	t.Run("getPCAP of a call whose files live on sensor 2", func(t *testing.T) {
		code, b, hdr := st.api(t, "getPCAP", map[string]any{"callId": st.callID})
		if code != http.StatusOK {
			t.Fatalf("status %d: %s", code, b)
		}
		if ct := hdr.Get("Content-Type"); ct != "application/vnd.tcpdump.pcap" {
			t.Errorf("Content-Type %q", ct)
		}
		r, err := pcapgo.NewReader(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		var n int
		var payloads []string
		for {
			data, _, err := r.ReadPacketData()
			if err != nil {
				break
			}
			n++
			pkt := gopacket.NewPacket(data, layers.LayerTypeEthernet, gopacket.Default)
			if app := pkt.ApplicationLayer(); app != nil {
				payloads = append(payloads, string(app.Payload()))
			}
		}
		if n != st.sipPkts+st.rtpPkts {
			t.Errorf("%d packets, want %d (SIP+RTP from sensor 2): %q", n, st.sipPkts+st.rtpPkts, payloads)
		}
		if len(payloads) == 0 || payloads[0] != "packet 0 of SIP" {
			t.Errorf("payloads %q", payloads)
		}
	})

	t.Run("getVoiceRecording from sensor 2", func(t *testing.T) {
		code, b, _ := st.api(t, "getVoiceRecording", map[string]any{"cdrId": strconv.FormatUint(st.cdrID, 10)})
		if code != http.StatusOK || !bytes.Equal(b, st.wav) {
			t.Errorf("status %d, %d bytes, want the %d bytes of sensor 2's WAV: %q", code, len(b), len(st.wav), b)
		}
	})

	t.Run("sensor 2 gone: its files are unavailable, sensor 1 still answers", func(t *testing.T) {
		if _, err := st.db.Exec("UPDATE sensors SET agent_stopped_at = UTC_TIMESTAMP() + INTERVAL 1 SECOND WHERE id_sensor = 2"); err != nil {
			t.Fatal(err)
		}
		code, b, _ := st.api(t, "getPCAP", map[string]any{"callId": st.callID})
		if code != http.StatusServiceUnavailable {
			t.Errorf("getPCAP of a stopped sensor: status %d, want 503: %s", code, b)
		}
		code, b, _ = st.api(t, "listActiveCalls", map[string]any{})
		var r activeReply
		_ = json.Unmarshal(b, &r)
		status := map[string]string{}
		for _, s := range r.Sensors {
			status[s.ID] = s.Status
		}
		if code != http.StatusOK || r.Total != "3" || status["2"] != "stopped" || status["1"] != "ok" {
			t.Errorf("status %d total %s sensors %v: %s", code, r.Total, status, b)
		}
	})
}

// TestHungSensorBounded: with a sensor that accepts and never answers, the
// first listActiveCalls still returns (after about Timeout) with that sensor
// reported, and the hung sensor holds at most MaxPerSensor connections no
// matter how many requests arrive.
func TestHungSensorBounded(t *testing.T) {
	st := newSite(t, siteTimeout)
	st.client.o.Cooldown = -1 // wait for it every time
	done := make(chan activeReply, 8)
	for range 8 {
		go func() {
			_, b, _ := st.api(t, "listActiveCalls", map[string]any{})
			var r activeReply
			_ = json.Unmarshal(b, &r)
			done <- r
		}()
	}
	for range 8 {
		r := <-done
		bad := map[string]string{}
		for _, s := range r.Sensors {
			bad[s.ID] = s.Status
		}
		if r.Total != "7" || (bad["3"] != "timeout" && bad["3"] != "busy") {
			t.Errorf("total %s sensors %v", r.Total, bad)
		}
	}
	c := st.client.Counters()
	if c.InFlight != 0 {
		t.Errorf("%d requests still in flight after all answers", c.InFlight)
	}
	// The server sees a close a moment after the client made it, so its own
	// count may overlap by one; the client's is exact.
	if n := st.hungAccepted(); n == 0 || c.PeakPerSensor > DefaultMaxPerSensor {
		t.Errorf("hung sensor: %d open at once (server view), client peak %d; want peak <= %d",
			n, c.PeakPerSensor, DefaultMaxPerSensor)
	}
	if c.Timeouts+c.Busy < 8 {
		t.Errorf("counters %+v: want 8 timeouts or busy for sensor 3", c)
	}
}
