package doctor

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
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

	"pbx-agent/agent/config"
	"pbx-agent/agent/discover"
	"pbx-agent/ami/amitest"
	"pbx-agent/internal/testkit"
	"pbx-agent/sniffer/capture"
	"pbx-agent/sniffer/fixture"
)

// fakeAMI serves the recorded login/CoreShowChannels answers for users.
func fakeAMI(t *testing.T, users map[string]string) int {
	t.Helper()
	ans := amitest.NewAnswers()
	ans.AddFile(t, "CoreShowChannels", "", "", fixture.Repo(t, "testdata", "ami", "ami-coreshowchannels-empty.raw"))
	srv := &amitest.Server{Users: users, Answers: ans}
	srv.Start(t)
	_, port, _ := net.SplitHostPort(srv.Addr())
	n, _ := strconv.Atoi(port)
	return n
}

// scratchRoot copies the fixture's /etc/asterisk into a temp root, with the
// AMI port replaced and extra files (name → content) added or replaced.
func scratchRoot(t *testing.T, amiPort int, extra map[string]string) string {
	t.Helper()
	src := fixture.Repo(t, "testdata", "discover", "fixture", "etc", "asterisk")
	root := t.TempDir()
	dst := filepath.Join(root, "etc", "asterisk")
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if e.Name() == "manager.conf" {
			b = bytes.Replace(b, []byte("port = 5038"), []byte("port = "+strconv.Itoa(amiPort)), 1)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for name, content := range extra {
		if err := os.WriteFile(filepath.Join(dst, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

type stubLive struct{}

func (stubLive) ReadPacket() ([]byte, gopacket.CaptureInfo, error) {
	return nil, gopacket.CaptureInfo{}, capture.ErrTimeout
}
func (stubLive) LinkType() layers.LinkType                { return layers.LinkTypeEthernet }
func (stubLive) Close() error                             { return nil }
func (stubLive) Stats() (capture.LiveStats, error)        { return capture.LiveStats{}, nil }
func okCapture(capture.LiveOptions) (capture.Live, error) { return stubLive{}, nil }

func testInterfaces() ([]discover.Interface, error) {
	return []discover.Interface{
		{Name: "lo", Loopback: true, Up: true, Addrs: []netip.Addr{netip.MustParseAddr("127.0.0.1")}},
		{Name: "eth0", Up: true, Default: true, Addrs: []netip.Addr{netip.MustParseAddr("192.0.2.2")}},
	}, nil
}

// baseEnv is a healthy host: the fake AMI, a writable spool, CAP_NET_RAW,
// a synchronised clock and free listener ports. conf lines are appended to
// the config file.
func baseEnv(t *testing.T, amiPort int, conf ...string) Env {
	t.Helper()
	dir := t.TempDir()
	lines := append([]string{"[general]",
		"spooldir = " + filepath.Join(dir, "spool"),
		"managerport = " + strconv.Itoa(testkit.FreePort(t)),
		"http_bind = 127.0.0.1:" + strconv.Itoa(testkit.FreePort(t)),
	}, conf...)
	if err := os.MkdirAll(filepath.Join(dir, "spool", "cdrqueue"), 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "pbx-agent.conf")
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return Env{
		ConfigPath:   path,
		FS:           os.DirFS(scratchRoot(t, amiPort, nil)),
		Interfaces:   testInterfaces,
		Capabilities: func() (uint64, error) { return 1<<capNetRaw | 1<<capNetAdmin, nil },
		OpenCapture:  okCapture,
		RxDropped:    func(string) (uint64, error) { return 0, nil },
		ClockSynced:  func() (bool, error) { return true, nil },
		Codecs:       func() ([]string, []string) { return []string{"PCMU", "PCMA", "iLBC", "G723"}, nil },
		Now:          func() time.Time { return time.Date(2026, 11, 24, 22, 45, 0, 0, time.UTC) },
		Timeout:      2 * time.Second,
	}
}

func appendConf(t *testing.T, env *Env, lines ...string) {
	t.Helper()
	b, err := os.ReadFile(env.ConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	b = append(b, []byte(strings.Join(lines, "\n")+"\n")...)
	if err := os.WriteFile(env.ConfigPath, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// want is one expected finding: status and substrings of message and hint.
type want struct {
	check  string
	status Status
	msg    string
	hint   string
}

// fakeARI answers /ari/asterisk/info for agent/agentpw as the recorded
// Asterisk does (ari-info.jsonl) and returns its port.
func fakeARI(t *testing.T) int {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, ok := r.BasicAuth()
		if r.URL.Path != "/ari/asterisk/info" {
			http.NotFound(w, r)
			return
		}
		if !ok || u != "agent" || p != "agentpw" {
			w.Header().Set("WWW-Authenticate", `Basic realm="Asterisk REST Interface"`)
			w.WriteHeader(http.StatusUnauthorized)
			w.Write([]byte(`{"error":"Authentication required"}`))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"system":{"version":"20.20.1","entity_id":"02:fc:00:00:00:01"}}`))
	}))
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().(*net.TCPAddr).Port
}

// hepConf is the real Asterisk's hep.conf of the hep-tls recording (to
// 127.0.0.1:9060, password hepsecret, capture id 4711), with extra lines.
func hepConf(t *testing.T, extra string) string {
	t.Helper()
	b, err := os.ReadFile(fixture.Repo(t, "testdata", "discover", "hep", "hep.conf"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b) + extra
}

func httpConf(port int) map[string]string {
	return map[string]string{"http.conf": "[general]\nenabled = yes\nbindaddr = 127.0.0.1\nbindport = " + strconv.Itoa(port) + "\n"}
}

func TestDoctor(t *testing.T) {
	users := map[string]string{"monitor": "monpass", "weak": "weakpw"}
	tests := []struct {
		name   string
		conf   []string
		mutate func(t *testing.T, env *Env, amiPort int)
		want   []want
		ok     bool
	}{
		{
			name: "healthy fixture install",
			ok:   true,
			want: []want{
				{check: "config", status: StatusOK, msg: "parsed"},
				{check: "manager.conf", status: StatusOK, msg: "/etc/asterisk/manager.conf readable"},
				{check: "ami-user", status: StatusOK, msg: "monitor"},
				{check: "sipport", status: StatusOK, msg: "5060,5070"},
				{check: "rtp-range", status: StatusInfo, msg: "10000-10200"},
				{check: "ami", status: StatusOK, msg: "Asterisk Call Manager/9.0.0"},
				{check: "ami-login", status: StatusOK, msg: "logged in as monitor"},
				{check: "ami-classes", status: StatusOK, msg: "read=all"},
				{check: "ami-actions", status: StatusOK, msg: "CoreShowChannels"},
				{check: "ari", status: StatusOK, msg: "as user agent (Asterisk 20.20.1)"},
				{check: "interface", status: StatusOK, msg: "lo exists"},
				{check: "capture-permission", status: StatusOK},
				{check: "bpf", status: StatusOK, msg: "capture opened on lo"},
				{check: "kernel-drops", status: StatusInfo, msg: "0 receive drops"},
				{check: "spool", status: StatusOK, msg: "writable"},
				{check: "cdr-queue", status: StatusOK, msg: "writable"},
				{check: "mysql", status: StatusSkip},
				{check: "manager-api", status: StatusOK, msg: "free"},
				{check: "manager-aes", status: StatusInfo},
				{check: "http", status: StatusOK, msg: "free"},
				{check: "clock", status: StatusOK, msg: "NTP-synchronised"},
				{check: "codecs", status: StatusOK, msg: "decodes PCMU PCMA iLBC G723"},
			},
		},
		{
			name: "wrong AMI secret",
			conf: []string{"ami_secret = wrong"},
			want: []want{{check: "ami-login", status: StatusFail, msg: "refused: wrong secret", hint: "ami_secret must equal the secret of [monitor]"}},
		},
		{
			name: "manager.conf unreadable",
			mutate: func(t *testing.T, env *Env, amiPort int) {
				env.FS = testkit.DeniedFS{FS: env.FS, Name: "etc/asterisk/manager.conf"}
				appendConf(t, env, "ami_port = "+strconv.Itoa(amiPort))
			},
			want: []want{
				{check: "manager.conf", status: StatusFail, msg: "not readable by uid", hint: "chmod 640 /etc/asterisk/manager.conf && usermod -aG asterisk pbx-agent"},
				{check: "ami-login", status: StatusSkip, msg: "no AMI user known"},
			},
		},
		{
			name: "manager.conf unreadable but AMI configured by hand",
			conf: []string{"ami_user = monitor", "ami_secret = monpass"},
			ok:   true,
			mutate: func(t *testing.T, env *Env, amiPort int) {
				env.FS = testkit.DeniedFS{FS: env.FS, Name: "etc/asterisk/manager.conf"}
				appendConf(t, env, "ami_port = "+strconv.Itoa(amiPort))
			},
			want: []want{
				{check: "manager.conf", status: StatusWarn, hint: "usermod -aG asterisk"},
				{check: "ami-login", status: StatusOK},
				{check: "ami-classes", status: StatusWarn, msg: "unknown"},
			},
		},
		{
			name: "read lacks call",
			conf: []string{"ami_user = weak", "ami_secret = weakpw"},
			mutate: func(t *testing.T, env *Env, amiPort int) {
				env.FS = os.DirFS(scratchRoot(t, amiPort, map[string]string{"manager.conf": "[general]\nenabled = yes\nbindaddr = 127.0.0.1\nport = " + strconv.Itoa(amiPort) + "\n[weak]\nsecret = weakpw\nread = system\nwrite = all\n"}))
			},
			want: []want{
				{check: "ami-user", status: StatusFail, msg: "read lacks call", hint: "read = system,call"},
				{check: "ami-login", status: StatusOK},
				{check: "ami-classes", status: StatusFail, msg: "lacks call", hint: "read = system,call"},
			},
		},
		{
			name: "wrong ARI password",
			mutate: func(t *testing.T, env *Env, amiPort int) {
				extra := httpConf(fakeARI(t))
				extra["ari.conf"] = "[general]\nenabled = yes\n[agent]\ntype = user\npassword = stale\n"
				env.FS = os.DirFS(scratchRoot(t, amiPort, extra))
			},
			want: []want{{check: "ari", status: StatusFail, msg: "401", hint: "ari.conf"}},
		},
		{
			name: "AMI not running",
			mutate: func(t *testing.T, env *Env, _ int) {
				env.FS = os.DirFS(scratchRoot(t, testkit.FreePort(t), nil))
			},
			want: []want{{check: "ami", status: StatusFail, msg: "cannot connect to AMI", hint: "systemctl status asterisk"}},
		},
		{
			name: "spool not writable",
			mutate: func(t *testing.T, env *Env, _ int) {
				file := filepath.Join(t.TempDir(), "file")
				if err := os.WriteFile(file, nil, 0o644); err != nil {
					t.Fatal(err)
				}
				appendConf(t, env, "spooldir = "+filepath.Join(file, "spool"))
			},
			want: []want{
				{check: "spool", status: StatusFail, msg: "is not writable", hint: "install -d -o pbx-agent"},
				{check: "cdr-queue", status: StatusFail},
			},
		},
		{
			name: "no CAP_NET_RAW",
			mutate: func(t *testing.T, env *Env, _ int) {
				env.Capabilities = func() (uint64, error) { return 0, nil }
			},
			want: []want{{check: "capture-permission", status: StatusFail, msg: "CAP_NET_RAW is not in effect", hint: "setcap cap_net_raw,cap_net_admin=eip"}},
		},
		{
			name: "capture open fails",
			mutate: func(t *testing.T, env *Env, _ int) {
				env.OpenCapture = func(capture.LiveOptions) (capture.Live, error) { return nil, errors.New("operation not permitted") }
			},
			want: []want{{check: "bpf", status: StatusFail, msg: "operation not permitted"}},
		},
		{
			name: "voipmonitor.conf filter runs after the agent's cut",
			conf: []string{"filter = not host 10.0.0.5"},
			ok:   true,
			want: []want{{check: "bpf", status: StatusOK, msg: "capture opened on lo with the 28-instruction filter"}},
		},
		{
			name: "interface missing",
			conf: []string{"interface = eth9"},
			want: []want{{check: "interface", status: StatusFail, msg: "eth9 does not exist", hint: "lo, eth0"}},
		},
		{
			name: "explicit sipport misses a port",
			conf: []string{"sipport = 5060"},
			ok:   true,
			want: []want{{check: "sipport", status: StatusWarn, msg: "misses Asterisk's SIP port 5070", hint: "add those ports"}},
		},
		{
			name: "manager port taken",
			mutate: func(t *testing.T, env *Env, _ int) {
				ln, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { ln.Close() })
				go func() {
					for {
						c, err := ln.Accept()
						if err != nil {
							return
						}
						c.Write([]byte("SSH-2.0-other\r\n"))
						c.Close()
					}
				}()
				appendConf(t, env, "managerport = "+strconv.Itoa(ln.Addr().(*net.TCPAddr).Port))
			},
			want: []want{{check: "manager-api", status: StatusFail, msg: "taken by another program", hint: "managerport"}},
		},
		{
			name: "manager API open without AES",
			conf: []string{"managerip = 0.0.0.0"},
			ok:   true,
			want: []want{{check: "manager-aes", status: StatusWarn, hint: "gen-aes-key"}},
		},
		{
			name: "MySQL unreachable",
			mutate: func(t *testing.T, env *Env, _ int) {
				appendConf(t, env, "mysqlhost = 127.0.0.1", "mysqlport = "+strconv.Itoa(testkit.FreePort(t)))
			},
			want: []want{{check: "mysql", status: StatusFail, msg: "cannot reach MySQL", hint: "systemctl status mariadb"}},
		},
		{
			name: "clock not synchronised",
			ok:   true,
			mutate: func(t *testing.T, env *Env, _ int) {
				env.ClockSynced = func() (bool, error) { return false, nil }
			},
			want: []want{{check: "clock", status: StatusWarn, hint: "timedatectl set-ntp true"}},
		},
		{
			name: "codec libraries missing",
			ok:   true,
			mutate: func(t *testing.T, env *Env, _ int) {
				env.Codecs = func() ([]string, []string) { return []string{"PCMU", "PCMA"}, []string{"iLBC", "G723"} }
			},
			want: []want{{check: "codecs", status: StatusWarn, msg: "plays as silence: iLBC G723", hint: "libavcodec"}},
		},
		{
			name: "HEP input, hep.conf points at the agent",
			conf: []string{"hep = yes", "hep_password = hepsecret"},
			ok:   true,
			mutate: func(t *testing.T, env *Env, amiPort int) {
				env.FS = os.DirFS(scratchRoot(t, amiPort, map[string]string{"hep.conf": hepConf(t, "")}))
			},
			want: []want{{check: "hep.conf", status: StatusOK, msg: "sends HEP to 127.0.0.1:9060 (capture_id 4711)"}},
		},
		{
			name: "HEP input, hep.conf to another port and password",
			conf: []string{"hep = yes", "hep_bind_port = 9070", "hep_password = other"},
			mutate: func(t *testing.T, env *Env, amiPort int) {
				env.FS = os.DirFS(scratchRoot(t, amiPort, map[string]string{"hep.conf": hepConf(t, "")}))
			},
			want: []want{{check: "hep.conf", status: StatusFail, msg: "capture_address = 127.0.0.1:9060, want 127.0.0.1:9070; capture_password differs",
				hint: "capture_address = 127.0.0.1:9070`, `capture_password = other`"}},
		},
		{
			name: "HEP input, hep.conf disabled",
			conf: []string{"hep = yes"},
			mutate: func(t *testing.T, env *Env, amiPort int) {
				env.FS = os.DirFS(scratchRoot(t, amiPort, map[string]string{"hep.conf": hepConf(t, "enabled = no\n")}))
			},
			want: []want{{check: "hep.conf", status: StatusFail, msg: "enabled = no"}},
		},
		{
			name: "HEP input without hep.conf",
			conf: []string{"hep = yes"},
			want: []want{{check: "hep.conf", status: StatusFail, msg: "does not exist", hint: "capture_address = 127.0.0.1:9060"}},
		},
		{
			name: "bad config",
			conf: []string{"sipprot = 5060"},
			want: []want{{check: "config", status: StatusFail, msg: "unknown key", hint: "check-config"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			amiPort := fakeAMI(t, users)
			env := baseEnv(t, amiPort, tt.conf...)
			env.FS = os.DirFS(scratchRoot(t, amiPort, httpConf(fakeARI(t))))
			if tt.mutate != nil {
				tt.mutate(t, &env, amiPort)
			}
			rep := Run(context.Background(), env)
			var text bytes.Buffer
			if err := rep.WriteText(&text); err != nil {
				t.Fatal(err)
			}
			if rep.OK() != tt.ok {
				t.Errorf("OK() = %v, want %v:\n%s", rep.OK(), tt.ok, text.String())
			}
			for _, w := range tt.want {
				fs := rep.Find(w.check)
				matched := false
				for _, f := range fs {
					if f.Status == w.status && strings.Contains(f.Message, w.msg) && strings.Contains(f.Hint, w.hint) {
						matched = true
					}
				}
				if !matched {
					t.Errorf("no %s finding %q (msg %q, hint %q) in:\n%s", w.status, w.check, w.msg, w.hint, text.String())
				}
			}
			// Every failure carries a hint.
			for _, f := range rep.Findings {
				if f.Status == StatusFail && f.Hint == "" {
					t.Errorf("fail without hint: %+v", f)
				}
			}
		})
	}
}

func TestReportOutput(t *testing.T) {
	r := &Report{}
	r.add("ami", StatusOK, "", "reachable")
	r.add("spool", StatusFail, "chown it", "not writable")
	r.add("clock", StatusWarn, "", "drift")
	var text bytes.Buffer
	if err := r.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	want := "ok    ami    reachable\nfail  spool  not writable\n             fix: chown it\nwarn  clock  drift\n1 failed, 1 warnings\n"
	if text.String() != want {
		t.Errorf("text:\n%q\nwant\n%q", text.String(), want)
	}
	var js bytes.Buffer
	if err := r.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(js.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if back.Fails != 1 || back.Warns != 1 || len(back.Findings) != 3 || back.Findings[1].Hint != "chown it" {
		t.Errorf("JSON round trip: %+v", back)
	}

	for _, tc := range []struct {
		name string
		rep  *Report
		code int
	}{{"fail", r, http.StatusServiceUnavailable}, {"ok", &Report{Findings: []Finding{{Check: "x", Status: StatusOK}}}, http.StatusOK}} {
		rec := httptest.NewRecorder()
		Handler(func(context.Context) *Report { return tc.rep }).ServeHTTP(rec, httptest.NewRequest("GET", "/healthz", nil))
		if rec.Code != tc.code || !strings.Contains(rec.Body.String(), `"findings"`) {
			t.Errorf("%s: /healthz %d %s", tc.name, rec.Code, rec.Body.String())
		}
	}
}

func TestRunDoesNotMutateGivenConfig(t *testing.T) {
	env := baseEnv(t, testkit.FreePort(t))
	cfg, err := config.Load(env.ConfigPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	env.Config = cfg
	rep := Run(context.Background(), env)
	if len(cfg.Interface) != 0 || cfg.AMIUser != "" {
		t.Errorf("caller's config changed: interface %v ami_user %q", cfg.Interface, cfg.AMIUser)
	}
	if f := rep.Find("interface"); len(f) == 0 || f[0].Status != StatusOK {
		t.Errorf("discovery not applied to the copy: %+v", f)
	}
}

func TestMissingPrivs(t *testing.T) {
	tests := []struct {
		name   string
		grants []string
		want   string
	}{
		{"all on *.*", []string{"GRANT ALL PRIVILEGES ON *.* TO `pbx`@`localhost` WITH GRANT OPTION"}, ""},
		{"all on db", []string{"GRANT USAGE ON *.* TO `u`@`%`", "GRANT ALL PRIVILEGES ON `voipmonitor`.* TO `u`@`%`"}, ""},
		{"partial", []string{"GRANT USAGE ON *.* TO `u`@`%`", "GRANT SELECT, INSERT ON `voipmonitor`.* TO `u`@`%`"}, "UPDATE,DELETE,CREATE,ALTER"},
		{"other db", []string{"GRANT ALL PRIVILEGES ON `other`.* TO `u`@`%`"}, "SELECT,INSERT,UPDATE,DELETE,CREATE,ALTER"},
		{"wildcard db", []string{"GRANT ALL ON `voip%`.* TO `u`@`%`"}, ""},
		{"escaped underscore", []string{"GRANT ALL ON `voip\\_mon`.* TO `u`@`%`"}, "SELECT,INSERT,UPDATE,DELETE,CREATE,ALTER"},
		{"table level only", []string{"GRANT ALL ON `voipmonitor`.`cdr` TO `u`@`%`"}, "SELECT,INSERT,UPDATE,DELETE,CREATE,ALTER"},
		{"role line", []string{"GRANT `r` TO `u`@`%`"}, "SELECT,INSERT,UPDATE,DELETE,CREATE,ALTER"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := strings.Join(missingPrivs(tt.grants, "voipmonitor"), ","); got != tt.want {
				t.Errorf("got %q want %q", got, tt.want)
			}
		})
	}
}

func TestParseCapEff(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    uint64
		wantErr bool
	}{
		{"root", "Name:\tx\nCapEff:\t000001ffffffffff\n", 0x1ffffffffff, false},
		{"net_raw only", "CapInh:\t0\nCapEff:\t0000000000002000\n", 1 << capNetRaw, false},
		{"missing", "Name:\tx\n", 0, true},
	}
	for _, tt := range tests {
		got, err := parseCapEff([]byte(tt.in))
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("%s: got %x, %v", tt.name, got, err)
		}
	}
}
