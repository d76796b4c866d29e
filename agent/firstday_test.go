package main

// Issue 18, "the first day of an operator": each rough edge a newcomer hit,
// pinned through the built binary as an operator runs it.

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"pbx-agent/agent/doctor"
	"pbx-agent/agent/manager"
	"pbx-agent/internal/testkit"
)

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// agentBinary builds ./agent once per test run, as `make build` does.
func agentBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "pbx-agent-bin-")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "pbx-agent")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			binErr = errors.New(string(out))
		}
	})
	if binErr != nil {
		t.Fatalf("go build: %v", binErr)
	}
	return binPath
}

// runBinary runs the built binary in dir (a folder outside the repository
// when dir is ""), returning its exit code and outputs.
func runBinary(t *testing.T, dir string, timeout time.Duration, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, agentBinary(t), args...)
	cmd.Dir = dir
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.ExitCode()
	default:
		t.Fatalf("run %v: %v", args, err)
	}
	if ctx.Err() != nil {
		t.Fatalf("pbx-agent %v did not exit within %v; stderr:\n%s", args, timeout, errb.String())
	}
	return code, out.String(), errb.String()
}

// TestFirstDayCLI pins item 6: help everywhere, a help command, --version,
// a stable command list and the usual exit codes.
func TestFirstDayCLI(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		code     int
		want     string // regexp on stdout+stderr
		dontWant string
	}{
		{"-h lists the subcommands", []string{"-h"}, 0, `(?s)commands:.*replay.*check-config.*doctor.*manager.*gen-aes-key.*daemon flags`, ""},
		{"help command", []string{"help"}, 0, `(?s)^usage: pbx-agent.*commands:`, ""},
		{"help of a command", []string{"help", "replay"}, 0, `usage: pbx-agent replay`, ""},
		{"help of an unknown command", []string{"help", "frob"}, 2, `unknown command "frob"`, ""},
		{"--version", []string{"--version"}, 0, `^pbx-agent \S+\n$`, ""},
		{"manager -h is help", []string{"manager", "-h"}, 0, `usage: pbx-agent manager`, "connect"},
		{"manager --help", []string{"manager", "--help"}, 0, `usage: pbx-agent manager`, ""},
		{"gen-aes-key -h is help", []string{"gen-aes-key", "-h"}, 0, `usage: pbx-agent gen-aes-key`, "manager_aes_key ="},
		{"check-config -h", []string{"check-config", "-h"}, 0, `usage: pbx-agent check-config`, ""},
		{"doctor --help", []string{"doctor", "--help"}, 0, `usage: pbx-agent doctor`, ""},
		{"bad flag is a usage error", []string{"replay", "-frob"}, 2, `flag provided but not defined`, ""},
		{"unknown command", []string{"frob"}, 2, `unknown command "frob" \(try: replay, check-config, doctor, manager, gen, gen-aes-key, version, help;`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errs := runBinary(t, "", time.Minute, tt.args...)
			all := out + errs
			if code != tt.code {
				t.Errorf("exit %d, want %d; output:\n%s", code, tt.code, all)
			}
			if !regexp.MustCompile(tt.want).MatchString(all) {
				t.Errorf("output does not match %q:\n%s", tt.want, all)
			}
			if tt.dontWant != "" && strings.Contains(all, tt.dontWant) {
				t.Errorf("output contains %q:\n%s", tt.dontWant, all)
			}
		})
	}
	// The "try:" list is the same on every run (it was a map's order).
	_, _, first := runBinary(t, "", time.Minute, "frob")
	for range 3 {
		if _, _, again := runBinary(t, "", time.Minute, "frob"); again != first {
			t.Fatalf("unknown-command text changed between runs:\n%s\n%s", first, again)
		}
	}
}

// TestFirstDayManagerClientErrors pins items 6 and 8: a refused connection
// names the address once and the config key; an unknown manager command
// makes `pbx-agent manager` exit non-zero.
func TestFirstDayManagerClientErrors(t *testing.T) {
	port := testkit.FreePort(t)
	code, _, errs := runBinary(t, "", time.Minute, "manager", "-config", os.DevNull, "-p", itoa(port), "listcalls")
	if code != 1 {
		t.Errorf("refused: exit %d, want 1", code)
	}
	addr := "127.0.0.1:" + itoa(port)
	if strings.Count(errs, addr) != 1 || !strings.Contains(errs, "connection refused") || !strings.Contains(errs, "managerport") {
		t.Errorf("refused: want the address once, the cause and the config key:\n%s", errs)
	}

	srv := startManagerForTest(t)
	code, out, errs := runBinary(t, "", time.Minute, "manager", "-config", os.DevNull, "-p", itoa(srv), "nosuchcommand")
	if code == 0 || !strings.Contains(errs, "unknown manager command") {
		t.Errorf("unknown command: exit %d, stdout %q, stderr %q; want non-zero and a clear message", code, out, errs)
	}
	code, out, _ = runBinary(t, "", time.Minute, "manager", "-config", os.DevNull, "-p", itoa(srv), "getversion")
	if code != 0 || out == "" {
		t.Errorf("getversion: exit %d, %q", code, out)
	}
}

// TestFirstDayFlagReplacesFileInterface pins item 1: -interface replaces the
// file's interface (it was appended, and the file's eth0 captured).
func TestFirstDayFlagReplacesFileInterface(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "agent.conf")
	text := "[general]\ninterface = eth0\nspooldir = " + filepath.Join(dir, "spool") + "\nmanagerport = 0\nhttp_bind =\nsavesip = no\nsavertp = no\n" +
		"asterisk_manager_conf = " + filepath.Join(dir, "none.conf") + "\n"
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"-interface", "pbxnosuch0"}, {"-set", "interface=pbxnosuch0"}} {
		code, _, errs := runBinary(t, dir, time.Minute, append([]string{"-config", conf}, args...)...)
		if code == 0 || !strings.Contains(errs, "pbxnosuch0") {
			t.Errorf("%v: exit %d, want a failure naming pbxnosuch0:\n%s", args, code, errs)
		}
		if strings.Contains(errs, "several interfaces") || strings.Contains(errs, "interface=eth0") {
			t.Errorf("%v: the file's eth0 was still used:\n%s", args, errs)
		}
	}
}

// TestFirstDayVoipmonitorConf pins item 7 through the binary: VoIPmonitor's
// sample config passes check-config and starts the daemon with no error
// and one warning, the same in both.
func TestFirstDayVoipmonitorConf(t *testing.T) {
	dir := t.TempDir()
	sample, err := filepath.Abs(filepath.Join("config", "testdata", "voipmonitor-sample.conf"))
	if err != nil {
		t.Fatal(err)
	}
	code, out, errs := runBinary(t, dir, time.Minute, "check-config", "-config", sample)
	if code != 0 {
		t.Fatalf("check-config: exit %d\n%s%s", code, out, errs)
	}
	checkWarn := regexp.MustCompile(`warning: (\d+ voipmonitor.conf keys accepted but without effect in pbx-agent: .*)`).FindStringSubmatch(out)
	if checkWarn == nil {
		t.Fatalf("check-config: no no-effect warning:\n%s", out)
	}
	pcap, err := filepath.Abs(filepath.Join("..", "testdata", "pcap", "asterisk-call-answered.pcap"))
	if err != nil {
		t.Fatal(err)
	}
	code, _, errs = runBinary(t, dir, 2*time.Minute, "-config", sample, "-r", pcap, "-exit-after-replay",
		"-spooldir", filepath.Join(dir, "spool"), "-managerport", "0", "-managersocket", "", "-http_bind", "", "-mysqlhost", "", "-mysqlsocket", "",
		"-set", "asterisk_manager_conf="+filepath.Join(dir, "none.conf"))
	if code != 0 {
		t.Fatalf("daemon on the sample config: exit %d\n%s", code, errs)
	}
	if n := strings.Count(errs, "level=ERROR"); n != 0 {
		t.Errorf("%d errors logged:\n%s", n, errs)
	}
	if n := strings.Count(errs, "without effect in pbx-agent"); n != 1 {
		t.Errorf("%d no-effect warnings, want 1:\n%s", n, errs)
	}
	if !strings.Contains(errs, checkWarn[1]) {
		t.Errorf("the daemon's warning differs from check-config's %q:\n%s", checkWarn[1], errs)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// startManagerForTest serves a manager API with no calls on a free port.
func startManagerForTest(t *testing.T) int {
	t.Helper()
	s := manager.New(manager.Config{})
	s.SetReady(true)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.Serve(ln) }()
	t.Cleanup(func() { _ = s.Close() })
	return ln.Addr().(*net.TCPAddr).Port
}

// notifySocket listens where the daemon sends sd_notify states.
func notifySocket(t *testing.T) (path string, states func() string) {
	t.Helper()
	path = filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	var mu sync.Mutex
	var got strings.Builder
	go func() {
		buf := make([]byte, 4096)
		for {
			n, _, err := conn.ReadFromUnix(buf)
			if err != nil {
				return
			}
			mu.Lock()
			got.Write(buf[:n])
			got.WriteByte('\n')
			mu.Unlock()
		}
	}()
	return path, func() string {
		time.Sleep(100 * time.Millisecond) // let the last datagram arrive
		mu.Lock()
		defer mu.Unlock()
		return got.String()
	}
}

// TestFirstDayPortTakenFailsBeforeReady pins item 5 (and issue 21's start-up
// line): the HTTP port is taken, so the daemon exits non-zero before READY,
// naming the port, the process holding it and the config key; nothing
// keeps running (the process has exited and the manager port is free).
func TestFirstDayPortTakenFailsBeforeReady(t *testing.T) {
	holder, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	httpAddr := holder.Addr().String()
	dir := t.TempDir()
	mport := testkit.FreePort(t)
	conf := writeAgentConf(t, dir, "managerport = "+itoa(mport), "http_bind = "+httpAddr)
	pcap := bundledPcap(t)
	sock, states := notifySocket(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, agentBinary(t), "-config", conf, "-r", pcap, "-realtime")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+sock)
	var errb bytes.Buffer
	cmd.Stderr = &errb
	err = cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("the daemon kept running with its HTTP port taken:\n%s", errb.String())
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() == 0 {
		t.Fatalf("exit: %v, want non-zero\n%s", err, errb.String())
	}
	msg := errb.String()
	self, _ := os.ReadFile("/proc/self/comm")
	for _, want := range []string{httpAddr, "http_bind", "address already in use", "held by " + strings.TrimSpace(string(self)) + " (pid " + itoa(os.Getpid()) + ")"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message does not name %q:\n%s", want, msg)
		}
	}
	if s := states(); strings.Contains(s, "READY=1") {
		t.Errorf("READY was sent before failing:\n%s", s)
	}
	if ln, err := net.Listen("tcp", "127.0.0.1:"+itoa(mport)); err != nil {
		t.Errorf("manager port still bound after the failed start: %v", err)
	} else {
		ln.Close()
	}
}

// TestFirstDayHealthAndDoctor pins item 2: /healthz and /readyz answer, and
// doctor recognises the agent's own web and manager ports instead of
// calling them "taken by another program".
func TestFirstDayHealthAndDoctor(t *testing.T) {
	dir := t.TempDir()
	hport, mport := testkit.FreePort(t), testkit.FreePort(t)
	conf := writeAgentConf(t, dir, "managerport = "+itoa(mport), "http_bind = 127.0.0.1:"+itoa(hport))
	stop := startBinary(t, dir, "-config", conf, "-r", bundledPcap(t))
	defer stop()
	base := "http://127.0.0.1:" + itoa(hport)
	waitHTTP(t, base+"/readyz", 200)
	for _, path := range []string{"/healthz", "/readyz"} {
		body := httpGet(t, base+path)
		if !strings.Contains(body, `"agent":"pbx-agent"`) {
			t.Errorf("%s = %s", path, body)
		}
	}
	// Ready while the bundled capture is still replayed ("running"): its
	// end comes a moment later.
	body := ""
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		body = httpGet(t, base+"/readyz")
		if strings.Contains(body, `"capture":"replay finished"`) || time.Now().After(deadline) {
			break
		}
	}
	if !strings.Contains(body, `"ready":true`) || !strings.Contains(body, `"capture":"replay finished"`) {
		t.Errorf("/readyz = %s", body)
	}
	_, out, _ := runBinary(t, dir, time.Minute, "doctor", "-config", conf, "-json")
	var rep doctor.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("doctor -json: %v\n%s", err, out)
	}
	for check, want := range map[string]string{"http": "running agent answers", "manager-api": "running agent answers", "ready": "ready=true"} {
		f := rep.Find(check)
		if len(f) == 0 || f[0].Status != doctor.StatusOK || !strings.Contains(f[0].Message, want) {
			t.Errorf("doctor %s findings = %+v, want ok: %s", check, f, want)
		}
	}
}

// startBinary starts the built daemon; stop sends SIGTERM and waits.
func startBinary(t *testing.T, dir string, args ...string) (stop func() string) {
	t.Helper()
	cmd := exec.Command(agentBinary(t), args...)
	cmd.Dir = dir
	var errb syncBuffer
	cmd.Stdout, cmd.Stderr = &errb, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	var once sync.Once
	stop = func() string {
		once.Do(func() {
			_ = cmd.Process.Signal(os.Interrupt)
			select {
			case <-done:
			case <-time.After(30 * time.Second):
				_ = cmd.Process.Kill()
				<-done
				t.Errorf("daemon did not stop on SIGINT:\n%s", errb.String())
			}
		})
		return errb.String()
	}
	t.Cleanup(func() { stop() })
	return stop
}

// waitHTTP polls url until it answers code (30 s at most).
func waitHTTP(t *testing.T, url string, code int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == code {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not answer %d in 30 s (last: %v)", url, code, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// writeAgentConf writes a config with a private spool, no manager.conf and
// the given extra lines; it returns its path.
func writeAgentConf(t *testing.T, dir string, lines ...string) string {
	t.Helper()
	conf := filepath.Join(dir, "agent.conf")
	text := "[general]\nspooldir = " + filepath.Join(dir, "spool") + "\nasterisk_manager_conf = " + filepath.Join(dir, "none.conf") + "\n" +
		strings.Join(lines, "\n") + "\n"
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return conf
}

// bundledPcap is the absolute path of the capture `make run` replays.
func bundledPcap(t *testing.T) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("..", "testdata", "pcap", "asterisk-call-answered.pcap"))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// dashboardCall is one row of /api/chunkplayer/calls.json.
type dashboardCall struct {
	CallRef  string   `json:"callref"`
	CallID   string   `json:"callid"`
	Duration int      `json:"duration"`
	Channels []string `json:"channels"`
}

// TestFirstDayEmbeddedDemo pins items 3, 4 and 12 (the AMI part): from a
// folder outside the repository, `pbx-agent` with no config replays the
// embedded call with its Asterisk channels, durations on the capture's
// clock (listActiveCalls, the dashboard) and a true capture→page latency.
func TestFirstDayEmbeddedDemo(t *testing.T) {
	hport, mport := testkit.FreePort(t), testkit.FreePort(t)
	stop := startBinary(t, t.TempDir(), "-config", "", "-managerport", itoa(mport), "-http_bind", "127.0.0.1:"+itoa(hport))
	base := "http://127.0.0.1:" + itoa(hport)
	waitHTTP(t, base+"/readyz", 200)
	var calls []dashboardCall
	deadline := time.Now().Add(60 * time.Second)
	for {
		var rep struct{ Calls []dashboardCall }
		if err := json.Unmarshal([]byte(httpGet(t, base+"/api/chunkplayer/calls.json")), &rep); err != nil {
			t.Fatal(err)
		}
		calls = rep.Calls
		if len(calls) == 2 && len(calls[0].Channels) > 0 && len(calls[1].Channels) > 0 && calls[0].Duration >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the embedded call with its channels did not show in 60 s: %+v\n%s", calls, stop())
		}
		time.Sleep(200 * time.Millisecond)
	}
	chans := map[string]string{}
	for _, c := range calls {
		chans[c.CallID] = strings.Join(c.Channels, ",")
		if c.Duration < 0 || c.Duration > 30 {
			t.Errorf("dashboard duration %d s of %s: not on the capture's clock", c.Duration, c.CallID)
		}
	}
	if chans["f431e3956bf2ebd6"] != "PJSIP/1001-00000009" || chans["63ea8d26-1d43-40d6-a46f-c3c1a77eaf0f"] != "PJSIP/1002-0000000a" {
		t.Errorf("channels = %v", chans)
	}
	var api struct {
		Results []struct {
			Duration        string `json:"duration"`
			ConnectDuration string `json:"connect_duration"`
		} `json:"results"`
	}
	if err := json.Unmarshal([]byte(httpGet(t, base+"/php/api.php?task=listActiveCalls")), &api); err != nil {
		t.Fatal(err)
	}
	for _, r := range api.Results {
		d, _ := strconv.Atoi(r.Duration)
		cd, _ := strconv.Atoi(r.ConnectDuration)
		if d < 0 || d > 30 || cd > d {
			t.Errorf("listActiveCalls duration %q connect_duration %q: not on the capture's clock", r.Duration, r.ConnectDuration)
		}
	}
	// The final acceptance line: doctor against the demo passes.
	code, out, errs := runBinary(t, "", time.Minute, "doctor", "-config", "", "-set", "managerport="+itoa(mport), "-set", "http_bind=127.0.0.1:"+itoa(hport))
	if code != 0 || !strings.Contains(out, "running agent answers on 127.0.0.1:"+itoa(hport)) || !strings.Contains(out, "ready=true") {
		t.Errorf("doctor against the demo: exit %d\n%s%s", code, out, errs)
	}
	if lat := listenLatency(t, "ws://127.0.0.1:"+itoa(hport)+"/ws/listen?callref="+calls[0].CallRef+"&sensor_id=-1"); lat < -time.Second || lat > 5*time.Second {
		t.Errorf("capture→page latency as the player computes it: %v", lat)
	}
}

// listenLatency listens to a call as the player page does and returns the
// page's latency figure for the first frame: now − clock offset − capture.
func listenLatency(t *testing.T, url string) time.Duration {
	t.Helper()
	conn, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	defer conn.Close()
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	var offsetMS float64
	for {
		kind, msg, err := conn.ReadMessage()
		if err != nil {
			t.Fatalf("listen: %v", err)
		}
		if kind == websocket.TextMessage {
			var st struct {
				Type          string  `json:"type"`
				ClockOffsetMS float64 `json:"clock_offset_ms"`
			}
			if json.Unmarshal(msg, &st) == nil && st.Type == "start" {
				offsetMS = st.ClockOffsetMS
			}
			continue
		}
		capMS := math.Float64frombits(binary.LittleEndian.Uint64(msg[12:20]))
		nowMS := float64(time.Now().UnixNano()) / 1e6
		return time.Duration((nowMS - offsetMS - capMS) * float64(time.Millisecond))
	}
}

// accessLine is an access-log line of an answer other than 5xx; pollLine
// one of the dashboard's polls.
var (
	accessLine = regexp.MustCompile(`(?m)msg="http request" .*status=[1-4]\d\d `)
	pollLine   = regexp.MustCompile(`(?m)msg="http request" .*path=/api/chunkplayer/calls\.json status=200 `)
)

// TestFirstDayLogging pins item 9: the dashboard's polls are not logged at
// INFO (the access log is Debug), and INFO carries the periodic status line
// with calls, packets/s, drops and heap.
func TestFirstDayLogging(t *testing.T) {
	defer func(d time.Duration) { statusEvery = d }(statusEvery)
	statusEvery = 300 * time.Millisecond
	for _, level := range []string{"info", "debug"} {
		t.Run(level, func(t *testing.T) {
			hport := testkit.FreePort(t)
			ctx, cancel := context.WithCancel(context.Background())
			var log syncBuffer
			done := make(chan int, 1)
			go func() {
				done <- run(ctx, []string{"-config", "", "-managerport", "0", "-http_bind", "127.0.0.1:" + itoa(hport), "-set", "log_level=" + level}, io.Discard, &log)
			}()
			base := "http://127.0.0.1:" + itoa(hport)
			waitHTTP(t, base+"/readyz", 200)
			for range 10 {
				httpGet(t, base+"/api/chunkplayer/calls.json")
			}
			status := regexp.MustCompile(`level=INFO msg=status calls=\d+ calls_total=\d+ packets_per_s=\d+ drops=\d+ heap_mb=\d+`)
			for deadline := time.Now().Add(20 * time.Second); !status.MatchString(log.String()) && time.Now().Before(deadline); {
				time.Sleep(100 * time.Millisecond)
			}
			stopDaemon(t, cancel, done, &log)
			out := log.String()
			// A 5xx answer is logged at WARN by design: waitHTTP may ask
			// /readyz before capture has started (503), so those lines
			// are not counted; every other answer is access log.
			access := len(accessLine.FindAllString(out, -1))
			polls := len(pollLine.FindAllString(out, -1))
			switch {
			case level == "info" && access != 0:
				t.Errorf("%d access-log lines at INFO:\n%s", access, out)
			case level == "debug" && polls < 10:
				t.Errorf("%d access-log lines of the dashboard's polls at DEBUG, want ≥ 10:\n%s", polls, out)
			}
			if !status.MatchString(out) {
				t.Errorf("no periodic status line:\n%s", out)
			}
		})
	}
}

// TestPartFailureStopsDaemon: a part that fails after READY stops the
// daemon as SIGTERM does (issue 21): capture ends, the shutdown runs in
// order, the exit is non-zero with the part's error, and nothing keeps
// listening.
func TestPartFailureStopsDaemon(t *testing.T) {
	boom := errors.New("test part failed")
	fail := make(chan struct{})
	testPart = func(ctx context.Context) error {
		select {
		case <-fail: // the daemon answered READY
			return boom
		case <-ctx.Done():
			return nil
		}
	}
	defer func() { testPart = nil }()
	hport := testkit.FreePort(t)
	var log syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(context.Background(), []string{"-config", "", "-managerport", "0", "-http_bind", "127.0.0.1:" + itoa(hport)}, io.Discard, &log)
	}()
	waitHTTP(t, "http://127.0.0.1:"+itoa(hport)+"/readyz", 200)
	close(fail)
	select {
	case code := <-done:
		if code == 0 {
			t.Errorf("exit 0 after a part failed; log:\n%s", log.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("the daemon kept running after a part failed; log:\n%s", log.String())
	}
	if !strings.Contains(log.String(), boom.Error()) {
		t.Errorf("the log does not name the failure:\n%s", log.String())
	}
	if ln, err := net.Listen("tcp", "127.0.0.1:"+itoa(hport)); err != nil {
		t.Errorf("HTTP port still bound after the daemon stopped: %v", err)
	} else {
		ln.Close()
	}
}
