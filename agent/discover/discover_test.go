package discover

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"io/fs"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"

	"pbx-agent/agent/config"
	"pbx-agent/internal/testkit"
	"pbx-agent/sniffer/fixture"
)

var update = flag.Bool("update", false, "rewrite golden files")

// fakeInterfaces is a host with loopback, a default-route NIC and a second NIC.
func fakeInterfaces() ([]Interface, error) {
	return []Interface{
		{Name: "lo", Loopback: true, Up: true, Addrs: []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("::1")}},
		{Name: "eth0", Up: true, Default: true, Addrs: []netip.Addr{netip.MustParseAddr("192.0.2.2")}},
		{Name: "eth1", Up: true, Addrs: []netip.Addr{netip.MustParseAddr("10.0.0.5")}},
	}, nil
}

// golden is what a discovery golden file holds.
type golden struct {
	Result *Result  `json:"result"`
	Errors []string `json:"errors"`
}

func errLines(err error) []string {
	if err == nil {
		return nil
	}
	return strings.Split(err.Error(), "\n")
}

func TestDiscoverGolden(t *testing.T) {
	root := fixture.Repo(t, "testdata", "discover")
	tests := []struct {
		name string
		opts Options
	}{
		{name: "fixture"},
		{name: "chansip-only"},
		{name: "nondefault"},
		{name: "astetcdir"},
		{name: "fixture-configured-user", opts: Options{AMIUser: "filtered"}},
		{name: "fixture-explicit-manager-conf", opts: Options{ManagerConf: "/etc/asterisk/manager.conf"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir, _, _ := strings.Cut(tt.name, "-configured")
			dir, _, _ = strings.Cut(dir, "-explicit")
			opts := tt.opts
			opts.FS = os.DirFS(filepath.Join(root, dir))
			opts.Interfaces = fakeInterfaces
			res, err := Discover(opts)
			got, jerr := json.MarshalIndent(golden{Result: res, Errors: errLines(err)}, "", "  ")
			if jerr != nil {
				t.Fatal(jerr)
			}
			got = append(got, '\n')
			testkit.Golden(t, filepath.Join(root, tt.name+".golden"), got, *update)
		})
	}
}

// TestDiscoverFixture pins the values issue 11 names for the recorded lab.
func TestDiscoverFixture(t *testing.T) {
	res, err := Discover(Options{FS: os.DirFS(fixture.Repo(t, "testdata", "discover", "fixture")), Interfaces: fakeInterfaces})
	if err != nil {
		t.Fatalf("Discover: %v", err)
	}
	checks := []struct{ name, got, want string }{
		{"ami", res.AMIHost + ":" + itoa(res.AMIPort), "127.0.0.1:5038"},
		{"user", res.AMIUser, "monitor"},
		{"secret", res.AMISecret, "monpass"},
		{"sipport", FormatPorts(res.SIPPorts), "5060,5070"},
		{"rtp", itoa(res.RTPStart) + "-" + itoa(res.RTPEnd), "10000-10200"},
		{"interface", strings.Join(res.Interfaces, ","), "lo"},
		{"ari", res.ARI.URL + " " + res.ARI.User + " " + res.ARI.Password, "http://127.0.0.1:8088/ari agent agentpw"},
		{"etc", res.EtcDir, "/etc/asterisk"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.name, c.got, c.want)
		}
	}
	// The real files too, when ../shared is present: same answers.
	conf := fixture.Shared(t, "asterisk", "conf")
	mfs := fstest.MapFS{}
	for _, f := range []string{"asterisk", "manager", "pjsip", "sip", "rtp", "modules"} {
		b, err := os.ReadFile(filepath.Join(conf, f+".conf"))
		if err != nil {
			t.Fatal(err)
		}
		mfs["etc/asterisk/"+f+".conf"] = &fstest.MapFile{Data: b}
	}
	res2, err := Discover(Options{FS: mfs, Interfaces: fakeInterfaces})
	if err != nil {
		t.Fatalf("Discover(shared fixture): %v", err)
	}
	if res2.AMIUser != "monitor" || FormatPorts(res2.SIPPorts) != "5060,5070" || res2.RTPStart != 10000 || res2.RTPEnd != 10200 {
		t.Errorf("shared fixture: user %q sipport %q rtp %d-%d", res2.AMIUser, FormatPorts(res2.SIPPorts), res2.RTPStart, res2.RTPEnd)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

func TestDiscoverProblems(t *testing.T) {
	root := fixture.Repo(t, "testdata", "discover", "fixture")
	base := os.DirFS(root)
	tests := []struct {
		name    string
		fsys    fs.FS
		opts    Options
		wantErr error
		wantMsg string
		check   func(t *testing.T, r *Result)
	}{
		{
			name: "unreadable manager.conf", fsys: testkit.DeniedFS{FS: base, Name: "etc/asterisk/manager.conf"},
			wantErr: ErrUnreadable, wantMsg: "/etc/asterisk/manager.conf",
			check: func(t *testing.T, r *Result) {
				if r.AMIUser != "" || r.ManagerErr == nil {
					t.Errorf("user %q ManagerErr %v", r.AMIUser, r.ManagerErr)
				}
				if FormatPorts(r.SIPPorts) != "5060,5070" {
					t.Errorf("the rest is still discovered: sipport %q", FormatPorts(r.SIPPorts))
				}
			},
		},
		{
			name: "no manager.conf", fsys: fstest.MapFS{"etc/asterisk/rtp.conf": {Data: []byte("[general]\nrtpstart=20000\nrtpend=20100\n")}},
			wantErr: ErrNotFound, wantMsg: "/etc/asterisk/manager.conf",
			check: func(t *testing.T, r *Result) {
				if r.RTPStart != 20000 || r.RTPEnd != 20100 {
					t.Errorf("rtp %d-%d", r.RTPStart, r.RTPEnd)
				}
			},
		},
		{
			name: "configured user lacks classes", fsys: base, opts: Options{AMIUser: "filtered"},
			wantErr: ErrAMI, wantMsg: "read lacks system",
			check: func(t *testing.T, r *Result) {
				if r.AMIRead.String() != "call,cdr" {
					t.Errorf("AMIRead = %s", r.AMIRead)
				}
			},
		},
		{
			name: "AMI disabled", fsys: fstest.MapFS{"etc/asterisk/manager.conf": {Data: []byte("[general]\nenabled=no\n[u]\nsecret=x\nread=all\nwrite=all\n")}},
			wantErr: ErrAMI, wantMsg: "enabled = no",
		},
		{
			name: "bind address on no interface", fsys: fstest.MapFS{
				"etc/asterisk/manager.conf": {Data: []byte("[general]\nenabled=yes\n[u]\nsecret=x\nread=all\nwrite=all\n")},
				"etc/asterisk/pjsip.conf":   {Data: []byte("[t]\ntype=transport\nbind=198.51.100.7:5060\n")},
			},
			wantErr: ErrInterface, wantMsg: "198.51.100.7",
		},
		{
			name: "bad bind", fsys: fstest.MapFS{
				"etc/asterisk/manager.conf": {Data: []byte("[general]\nenabled=yes\n[u]\nsecret=x\nread=all\nwrite=all\n")},
				"etc/asterisk/pjsip.conf":   {Data: []byte("[t]\ntype=transport\nbind=pbx.example:5060\n")},
			},
			wantErr: ErrConfig, wantMsg: "/etc/asterisk/pjsip.conf:3",
		},
		{
			name: "asterisk.conf template directories ignored", fsys: fstest.MapFS{
				"etc/asterisk/asterisk.conf": {Data: []byte("[directories](!)\nastetcdir => /elsewhere\n")},
				"etc/asterisk/manager.conf":  {Data: []byte("[general]\nenabled=yes\nport=6000\n[u]\nsecret=x\nread=all\nwrite=all\n")},
			},
			check: func(t *testing.T, r *Result) {
				if r.EtcDir != "/etc/asterisk" || r.AMIPort != 6000 || r.AMIUser != "u" {
					t.Errorf("etc %s port %d user %s", r.EtcDir, r.AMIPort, r.AMIUser)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := tt.opts
			opts.FS = tt.fsys
			opts.Interfaces = fakeInterfaces
			r, err := Discover(opts)
			if r == nil {
				t.Fatal("nil Result")
			}
			if tt.wantErr == nil && err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if tt.wantMsg != "" && (err == nil || !strings.Contains(err.Error(), tt.wantMsg)) {
				t.Errorf("err %q does not name %q", err, tt.wantMsg)
			}
			if tt.check != nil {
				tt.check(t, r)
			}
		})
	}
}

// TestDiscoverChmod uses the real permission bits (skipped as root, who
// reads everything).
func TestDiscoverChmod(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("running as root: mode 000 does not stop root (testkit.DeniedFS covers this case)")
	}
	dir := t.TempDir()
	etc := filepath.Join(dir, "etc", "asterisk")
	if err := os.MkdirAll(etc, 0o755); err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile(fixture.Repo(t, "testdata", "discover", "fixture", "etc", "asterisk", "manager.conf"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(etc, "manager.conf"), src, 0o000); err != nil {
		t.Fatal(err)
	}
	_, err = Discover(Options{FS: os.DirFS(dir), Interfaces: fakeInterfaces})
	if !errors.Is(err, ErrUnreadable) || !errors.Is(err, fs.ErrPermission) {
		t.Fatalf("err = %v, want ErrUnreadable wrapping fs.ErrPermission", err)
	}
}

func TestApply(t *testing.T) {
	res, err := Discover(Options{FS: os.DirFS(fixture.Repo(t, "testdata", "discover", "nondefault")), Interfaces: fakeInterfaces})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		flags map[string]string
		want  map[string]string // key → rendered value after Apply
	}{
		{
			name: "empty config takes everything",
			want: map[string]string{"ami_host": "127.0.0.1", "ami_port": "15038", "ami_user": "pbxagent", "ami_secret": "(set)", "sipport": "5060,5062", "interface": "eth0"},
		},
		{
			name:  "explicit config wins",
			flags: map[string]string{"ami_port": "5038", "sipport": "5080", "interface": "eth1", "ami_user": "someone", "ami_secret": "s3"},
			want:  map[string]string{"ami_host": "127.0.0.1", "ami_port": "5038", "ami_user": "someone", "ami_secret": "(set)", "sipport": "5080", "interface": "eth1"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := config.Parse("test", nil, tt.flags)
			if err != nil {
				t.Fatal(err)
			}
			var logBuf bytes.Buffer
			Apply(cfg, res, slog.New(slog.NewTextHandler(&logBuf, nil)))
			for k, want := range tt.want {
				_, got := setter(cfg, res, k)
				if got != want {
					t.Errorf("%s = %q, want %q", k, got, want)
				}
			}
			if tt.flags["ami_secret"] == "s3" && cfg.AMISecret != "s3" {
				t.Errorf("explicit secret replaced")
			}
			if tt.flags == nil && !strings.HasPrefix(cfg.Source["ami_port"], "discovered: ") {
				t.Errorf("Source[ami_port] = %q", cfg.Source["ami_port"])
			}
			// Each value is logged exactly once.
			for _, v := range res.Values {
				needle := "key=" + v.Key + " "
				if n := strings.Count(logBuf.String(), needle); v.Key != "sip_bind" && n != 1 {
					t.Errorf("key %s logged %d times:\n%s", v.Key, n, logBuf.String())
				}
			}
			if strings.Contains(logBuf.String(), "agentsecret") {
				t.Error("secret leaked into the log")
			}
		})
	}
}

func TestDefaultRoute(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"eth0", "Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\n eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\neth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\n", "eth0"},
		{"none", "Iface\tDestination\n", ""},
		{"empty", "", ""},
	}
	for _, tt := range tests {
		if got := defaultRoute([]byte(tt.in)); got != tt.want {
			t.Errorf("%s: got %q want %q", tt.name, got, tt.want)
		}
	}
}
