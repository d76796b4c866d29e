package config

import (
	"encoding/json"
	"errors"
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite golden files")

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		flags   map[string]string
		want    func(*Config) bool
		wantErr string // substring; "" = no error
	}{
		{name: "empty file gives defaults", in: "",
			want: func(c *Config) bool {
				return c.IDSensor == -1 && c.ManagerPort == 5029 && c.HTTPBind == "127.0.0.1:8080" && !c.DatabaseEnabled()
			}},
		// Issue 17 item 11: "http_bind =" disables HTTP, as its hint says.
		{name: "empty http_bind disables HTTP", in: "[general]\nhttp_bind =\n",
			want: func(c *Config) bool { return c.HTTPBind == "" && c.Source["http_bind"] != "" }},
		{name: "no section header", in: "id_sensor = 3\n",
			want: func(c *Config) bool { return c.IDSensor == 3 }},
		{name: "sipport ranges", in: "[general]\nsipport = 5060, 5070-5072\n",
			want: func(c *Config) bool {
				return len(c.SIPPorts) == 2 && c.SIPPorts[1] == PortRange{5070, 5072} && c.SIPPorts[1].Contains(5071)
			}},
		{name: "sip_detect on by default, off with no", in: "sip_detect = no\n",
			want: func(c *Config) bool { return !c.SIPDetect && Default().SIPDetect }},
		{name: "deduplicate and udp_port_vxlan", in: "deduplicate = yes\nudp_port_vxlan = 8472\n",
			want: func(c *Config) bool { return c.Deduplicate && c.VXLANPort == 8472 && Default().VXLANPort == 4789 }},
		{name: "repeated interface accumulates", in: "interface = eth0\ninterface = eth1,eth2\n",
			want: func(c *Config) bool { return strings.Join(c.Interface, "|") == "eth0|eth1|eth2" }},
		{name: "repeated scalar: last wins", in: "id_sensor = 3\nid_sensor = 4\n",
			want: func(c *Config) bool { return c.IDSensor == 4 }},
		{name: "flag overrides file", in: "mysqlhost = db1\n", flags: map[string]string{"mysqlhost": "db2"},
			want: func(c *Config) bool { return c.MySQLHost == "db2" && c.Source["mysqlhost"] == "flag" }},
		{name: "keys are case-insensitive", in: "MySQLHost = db1\n",
			want: func(c *Config) bool { return c.MySQLHost == "db1" && c.DatabaseEnabled() }},
		{name: "password keeps hash without space", in: "mysqlpassword = a#b ; c\n",
			want: func(c *Config) bool { return c.MySQLPassword == "a#b" }},
		{name: "voipmonitor-only key is ignored with a note", in: "[general]\nsave_audiograph = yes\n",
			want: func(c *Config) bool { return len(c.Ignored) == 1 && c.Ignored[0] == "t.conf:2: save_audiograph" }},
		{name: "ipv6 off by default, on with yes", in: "[general]\nipv6 = yes\n",
			want: func(c *Config) bool { return c.IPv6 && !Default().IPv6 && len(c.Ignored) == 0 }},
		{name: "ipv6 not a boolean", in: "ipv6 = maybe\n", wantErr: `ipv6: bad value "maybe"`},
		{name: "filter", in: "[general]\nfilter = udp or (tcp and port 5060)\n",
			want: func(c *Config) bool {
				return c.Filter == "udp or (tcp and port 5060)" && len(c.Ignored) == 0 && Default().Filter == ""
			}},
		{name: "filter outside the subset", in: "[general]\nfilter = not host 10.0.0.5 and ether host 1\n",
			wantErr: `t.conf:2: filter: bad value "not host 10.0.0.5 and ether host 1": capture: filter not supported: "ether" at column 23`},
		{name: "filter syntax", in: "filter = (udp\n", wantErr: `t.conf:1: filter: bad value "(udp": capture: filter syntax error: end of expression at column 5`},
		{name: "flush interval plain seconds", in: "cdr_flush_interval = 1.5\n",
			want: func(c *Config) bool { return c.CDRFlushInterval == 1500*time.Millisecond }},
		{name: "nocdr disables database", in: "mysqlhost = h\nnocdr = yes\n",
			want: func(c *Config) bool { return !c.DatabaseEnabled() }},
		{name: "sniffer defaults to yes", in: "",
			want: func(c *Config) bool { return c.Sniffer && c.SensorHeartbeat == 0 && c.SensorManagerKeys == nil }},
		{name: "sniffer = no is a front end", in: "sniffer = no\nsensor_heartbeat = 2\nsensor_offline_after = 9s\n",
			want: func(c *Config) bool {
				return !c.Sniffer && c.SensorHeartbeat == 2*time.Second && c.SensorOfflineAfter == 9*time.Second
			}},
		{name: "sensor_manager_key repeats", in: "sensor_manager_key = 2:AAAAAAAAAAAAAAAAAAAAAA==:AQEBAQEBAQEBAQEBAQEBAQ==\n" +
			"sensor_manager_key = 3:AgICAgICAgICAgICAgICAg==:AwMDAwMDAwMDAwMDAwMDAw==\n",
			want: func(c *Config) bool {
				return len(c.SensorManagerKeys) == 2 && strings.HasPrefix(c.SensorManagerKeys[1], "3:")
			}},
		{name: "sensor_manager_key without iv", in: "sensor_manager_key = 2:AAAAAAAAAAAAAAAAAAAAAA==\n",
			wantErr: `want <id_sensor>:<base64 key>:<base64 iv>`},
		{name: "sensor_manager_key short key", in: "sensor_manager_key = 2:AAAA:AQEBAQEBAQEBAQEBAQEBAQ==\n",
			wantErr: `key: decodes to 3 bytes, want 16`},
		{name: "spool limits", in: "maxpoolsize = 1024\nmaxpoolrtpdays = 3\ncleanspool = no\ncleanspool_interval = 5m\n",
			want: func(c *Config) bool {
				return c.MaxPoolSizeMB == 1024 && c.MaxPoolRTPDays == 3 && !c.CleanSpool && c.CleanSpoolInterval == 5*time.Minute
			}},
		{name: "negative maxpoolsize", in: "maxpoolsize = -1\n", wantErr: `maxpoolsize: bad value "-1": -1 outside 0-1073741824`},
		{name: "cleanspool_interval too short", in: "cleanspool_interval = 10ms\n", wantErr: `outside 1s-24h`},
		{name: "sensor_heartbeat too short", in: "sensor_heartbeat = 1ms\n",
			wantErr: `sensor_heartbeat: bad value "1ms": outside 100ms-1h`},

		{name: "unknown key with suggestion", in: "[general]\n\nmysqlhots = x\n",
			wantErr: `t.conf:3: mysqlhots: unknown key (did you mean "mysqlhost"?)`},
		{name: "unknown key without suggestion", in: "frobnicate = 1\n",
			wantErr: `t.conf:1: frobnicate: unknown key`},
		{name: "jitter buffers on by default as VoIPmonitor's", in: "",
			want: func(c *Config) bool {
				return c.JitterF1 && c.JitterF2 && c.JitterAdapt && c.JitterF1Size == 50 && c.JitterF1Resync == 100 &&
					c.JitterAdaptSize == 500 && c.JitterAdaptResync == 500
			}},
		{name: "jitter buffers set", in: "jitterbuffer_f1 = no\njitterbuffer_f2 = no\njitterbuffer_adapt = no\n" +
			"jitterbuffer_f1_jbsize = 80\njitterbuffer_f1_resync_threshold = 160\n" +
			"jitterbuffer_adapt_jbsize = 300\njitterbuffer_adapt_resync_threshold = 400\n",
			want: func(c *Config) bool {
				return !c.JitterF1 && !c.JitterF2 && !c.JitterAdapt && c.JitterF1Size == 80 && c.JitterF1Resync == 160 &&
					c.JitterAdaptSize == 300 && c.JitterAdaptResync == 400 && len(c.Ignored) == 0
			}},
		{name: "fixed jitter buffer too large", in: "jitterbuffer_f1_jbsize = 400\njitterbuffer_f1_resync_threshold = 100\n",
			wantErr: `t.conf:2: jitterbuffer_f1_resync_threshold: jitterbuffer_f1_jbsize + jitterbuffer_f1_resync_threshold is 500 ms, above 480`},
		{name: "jitter buffer size zero", in: "jitterbuffer_f1_jbsize = 0\n",
			wantErr: `t.conf:1: jitterbuffer_f1_jbsize: bad value "0": 0 outside 1-479`},
		{name: "call timeouts as VoIPmonitor's by default", in: "",
			want: func(c *Config) bool {
				return c.RTPTimeout == 300*time.Second && c.SIPOnlyTimeout == time.Hour && c.MaxCallDuration == 4*time.Hour
			}},
		{name: "call timeouts set", in: "rtptimeout = 60\nsipwithoutrtptimeout = 7200\nabsolute_timeout = 28800\n",
			want: func(c *Config) bool {
				return c.RTPTimeout == time.Minute && c.SIPOnlyTimeout == 2*time.Hour && c.MaxCallDuration == 8*time.Hour && len(c.Ignored) == 0
			}},
		{name: "REGISTER rules as VoIPmonitor's by default", in: "",
			want: func(c *Config) bool {
				return c.RegisterTimeout == 5*time.Second && c.RegisterMaxRegisters == 4 && c.RegisterMaxMessages == 20 &&
					c.RegisterStateTimeout == 10*time.Minute && !c.RegisterTimeoutNoFailed
			}},
		{name: "REGISTER rules set", in: "sip-register-timeout = 8\nsip-register-max-registers = 6\nsip-register-max-messages = 30\n" +
			"sip-register-state-timeout = 0\nsip-register-timeout-disable_save_failed = yes\n",
			want: func(c *Config) bool {
				return c.RegisterTimeout == 8*time.Second && c.RegisterMaxRegisters == 6 && c.RegisterMaxMessages == 30 &&
					c.RegisterStateTimeout == 0 && c.RegisterTimeoutNoFailed && len(c.Ignored) == 0
			}},
		{name: "sip-register-timeout zero", in: "sip-register = yes\nsip-register-timeout = 0\n",
			wantErr: `t.conf:2: sip-register-timeout: bad value "0": 0 outside 1-2592000`},
		{name: "sip-register-max-registers not a number", in: "sip-register-max-registers = four\n",
			wantErr: `t.conf:1: sip-register-max-registers: bad value "four"`},
		{name: "sip-register-max-messages zero", in: "sip-register-max-messages = 0\n",
			wantErr: `t.conf:1: sip-register-max-messages: bad value "0": 0 outside 1-1000000`},
		{name: "sip-register-state-timeout negative", in: "sip-register-state-timeout = -5\n",
			wantErr: `t.conf:1: sip-register-state-timeout: bad value "-5": -5 outside 0-2592000`},
		{name: "sip-register-timeout-disable_save_failed not a boolean", in: "sip-register-timeout-disable_save_failed = 2\n",
			wantErr: `t.conf:1: sip-register-timeout-disable_save_failed: bad value "2"`},
		{name: "natalias lines", in: "natalias = 203.0.113.5 10.0.0.5\nnatalias = 198.51.100.7=192.168.1.7\nnatalias = 198.51.100.8:192.168.1.8\nnatalias = 2001:db8::1 fd00::1\n",
			want: func(c *Config) bool {
				a := func(s string) netip.Addr { return netip.MustParseAddr(s) }
				return len(c.NATAliases) == 4 && c.NATAliases[a("203.0.113.5")] == a("10.0.0.5") &&
					c.NATAliases[a("198.51.100.7")] == a("192.168.1.7") && c.NATAliases[a("198.51.100.8")] == a("192.168.1.8") &&
					c.NATAliases[a("2001:db8::1")] == a("fd00::1") && len(c.Ignored) == 0
			}},
		{name: "savertcp follows savertp unless set", in: "",
			want: func(c *Config) bool { return c.SaveRTCP == nil }},
		{name: "savertcp = no", in: "savertcp = no\n",
			want: func(c *Config) bool { return c.SaveRTCP != nil && !*c.SaveRTCP && len(c.Ignored) == 0 }},
		{name: "caller from identity headers", in: "passertedidentity = yes\nppreferredidentity = yes\nremotepartyid = yes\nremotepartypriority = yes\n",
			want: func(c *Config) bool {
				return c.PAssertedIdentity && c.PPreferredIdentity && c.RemotePartyID && c.RemotePartyPriority && len(c.Ignored) == 0
			}},
		{name: "destination_number_mode 1 by default", in: "",
			want: func(c *Config) bool { return c.DestinationNumberMode == 1 }},
		{name: "destination_number_mode = 2", in: "destination_number_mode = 2\n",
			want: func(c *Config) bool { return c.DestinationNumberMode == 2 && len(c.Ignored) == 0 }},
		{name: "destination_number_mode 3", in: "destination_number_mode = 3\n",
			wantErr: `t.conf:1: destination_number_mode: bad value "3": 3 outside 1-2 (1 (default): the called number from the INVITE's To header; 2: from its Request-URI)`},
		{name: "callernum_numberonly yes by default", in: "",
			want: func(c *Config) bool { return c.CallerNumberOnly }},
		{name: "callernum_numberonly = no", in: "callernum_numberonly = no\n",
			want: func(c *Config) bool { return !c.CallerNumberOnly && len(c.Ignored) == 0 }},
		{name: "callernum_numberonly not a boolean", in: "callernum_numberonly = 2\n",
			wantErr: `t.conf:1: callernum_numberonly: bad value "2": not a boolean (yes (default) or no: the caller's number of P-Asserted-Identity <sip:+4930111;cpc=ordinary> is +4930111, or none)`},
		{name: "last_dest_number = yes", in: "last_dest_number = yes\n",
			want: func(c *Config) bool { return c.LastDestNumber && len(c.Ignored) == 0 }},
		{name: "last_dest_number not a boolean", in: "last_dest_number = latest\n",
			wantErr: `t.conf:1: last_dest_number: bad value "latest": not a boolean (yes or no (default): the called number from the caller's latest INVITE (overlap dialling), not its first)`},
		{name: "update_dstnum_onanswer = yes", in: "update_dstnum_onanswer = yes\n",
			want: func(c *Config) bool { return c.UpdateDstnumOnAnswer && len(c.Ignored) == 0 }},
		{name: "update_dstnum_onanswer not a boolean", in: "update_dstnum_onanswer = 3\n",
			wantErr: `t.conf:1: update_dstnum_onanswer: bad value "3": not a boolean (yes or no (default): the called number of the forked INVITE (hunt group) the 200 OK answers)`},
		{name: "cdronlyanswered, cdronlyrtp", in: "cdronlyanswered = yes\ncdronlyrtp = yes\n",
			want: func(c *Config) bool { return c.CDROnlyAnswered && c.CDROnlyRTP && len(c.Ignored) == 0 }},
		{name: "natalias one address", in: "natalias = 203.0.113.5\n",
			wantErr: `t.conf:1: natalias: bad value "203.0.113.5": want two addresses`},
		{name: "natalias mixed families", in: "natalias = 203.0.113.5 fd00::1\n",
			wantErr: `t.conf:1: natalias: bad value "203.0.113.5 fd00::1": an IPv4 and an IPv6 address`},
		{name: "onewaytimeout 15 s by default", in: "",
			want: func(c *Config) bool { return c.OneWayTimeout == 15*time.Second }},
		{name: "onewaytimeout = 30", in: "onewaytimeout = 30\n",
			want: func(c *Config) bool { return c.OneWayTimeout == 30*time.Second && len(c.Ignored) == 0 }},
		{name: "onewaytimeout zero", in: "onewaytimeout = 0\n",
			wantErr: `t.conf:1: onewaytimeout: bad value "0": 0 outside 1-2592000 (seconds after its last packet a call with no SIP reply from the other side is closed, bye 105 (default 15))`},
		{name: "call timeout zero", in: "rtptimeout = 0\n",
			wantErr: `t.conf:1: rtptimeout: bad value "0": 0 outside 1-2592000 (seconds without a packet after which a call whose RTP was seen is closed (default 300))`},
		{name: "bad port", in: "id_sensor = 1\nmysqlport = 70000\n",
			wantErr: `t.conf:2: mysqlport: bad value "70000": 70000 outside 1-65535 (a TCP port 1-65535)`},
		{name: "bad node in mysqlhost", in: "mysqlhost = n1,n2:0\n",
			wantErr: `t.conf:1: mysqlhost: bad value "n1,n2:0": dbconn: bad MySQL node address: "n2:0": want host:port with a port 1-65535 (host[:port], or a comma list of cluster nodes tried in order; empty disables the CDR store)`},
		{name: "bad boolean", in: "savesip = maybe\n",
			wantErr: `t.conf:1: savesip: bad value "maybe": not a boolean (yes or no)`},
		{name: "bad sipport", in: "sipport = 5080-5070\n",
			wantErr: `t.conf:1: sipport: bad value "5080-5070": range 5080-5070 is reversed`},
		{name: "id_sensor zero", in: "id_sensor = 0\n", wantErr: `0 is not a sensor id`},
		{name: "aes key wrong size", in: "manager_aes_key = AAEC\nmanager_aes_iv = AAECAwQFBgcICQoLDA0ODw==\n",
			wantErr: `t.conf:1: manager_aes_key: bad value (4 characters, not shown: it is secret): decodes to 3 bytes, want 16`},
		{name: "aes key without iv", in: "manager_aes_key = AAECAwQFBgcICQoLDA0ODw==\n",
			wantErr: `default: manager_aes_iv: manager_aes_key and manager_aes_iv must be set together`},
		{name: "unknown section", in: "[general]\nid_sensor = 1\n[other]\nx = 1\n",
			wantErr: `t.conf:3: [other]: unknown section`},
		{name: "bad flag", in: "", flags: map[string]string{"managerport": "x"},
			wantErr: `flag: managerport: bad value "x": not an integer`},
		{name: "several errors all reported", in: "a_b = 1\nmysqlport = x\n",
			wantErr: "t.conf:1: a_b: unknown key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse("t.conf", []byte(tt.in), tt.flags)
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("err = nil, want %q", tt.wantErr)
				}
				if !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %q, want it to contain %q", err, tt.wantErr)
				}
				var ce *Error
				if !errors.As(err, &ce) {
					t.Fatalf("err %v is not a *config.Error", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("err = %v", err)
			}
			if !tt.want(c) {
				t.Fatalf("unexpected config: %+v", c)
			}
		})
	}
}

func TestParseReportsEveryError(t *testing.T) {
	_, err := Parse("t.conf", []byte("a_b = 1\nmysqlport = x\nsavesip = 2\n"), nil)
	for _, want := range []string{"t.conf:1:", "t.conf:2:", "t.conf:3:"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("err = %v, want it to mention %s", err, want)
		}
	}
	if !errors.Is(err, ErrUnknownKey) || !errors.Is(err, ErrBadValue) {
		t.Errorf("err = %v, want both ErrUnknownKey and ErrBadValue", err)
	}
}

func TestLoadGolden(t *testing.T) {
	for _, name := range []string{"full", "voipmonitor-ref"} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join("testdata", name+".conf")
			c, err := Load(path, nil)
			if err != nil {
				t.Fatal(err)
			}
			got, err := json.MarshalIndent(c, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			golden := filepath.Join("testdata", name+".golden")
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create)", err)
			}
			if string(got) != string(want) {
				t.Errorf("config differs from %s (run with -update if intended):\n%s", golden, got)
			}
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.conf"), nil)
	if !errors.Is(err, ErrRead) || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("err = %v, want ErrRead wrapping ErrNotExist", err)
	}
}

func TestMySQLDSN(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string
	}{
		{"tcp", "mysqlhost = db\nmysqlport = 3307\nmysqlusername = u\nmysqlpassword = p\nmysqldb = d\n",
			"u:p@tcp(db:3307)/d?readTimeout=30s&timeout=5s&writeTimeout=30s"},
		{"socket wins", "mysqlhost = localhost\nmysqlsocket = /tmp/s.sock\nmysqlusername = u\nmysqldb = d\n",
			"u@unix(/tmp/s.sock)/d?readTimeout=30s&timeout=5s&writeTimeout=30s"},
		{"ipv6 host", "mysqlhost = ::1\nmysqlusername = u\nmysqldb = d\n",
			"u@tcp([::1]:3306)/d?readTimeout=30s&timeout=5s&writeTimeout=30s"},
		{"host:port", "mysqlhost = db:3310\nmysqlport = 3307\nmysqlusername = u\nmysqldb = d\n",
			"u@tcp(db:3310)/d?readTimeout=30s&timeout=5s&writeTimeout=30s"},
		{"cluster nodes in order", "mysqlhost = n1, n2:3310,n3\nmysqlport = 3307\nmysqlusername = u\nmysqldb = d\n",
			"u@nodes(n1:3307,n2:3310,n3:3307)/d?readTimeout=30s&timeout=5s&writeTimeout=30s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse("t.conf", []byte(tt.in), nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := c.MySQLDSN(); got != tt.want {
				t.Errorf("DSN = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestCheck(t *testing.T) {
	dir := t.TempDir()
	okConf := filepath.Join(dir, "ok.conf")
	mc := filepath.Join(dir, "manager.conf")
	if err := os.WriteFile(mc, []byte("[general]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	spool := filepath.Join(dir, "spool", "sub")
	if err := os.WriteFile(okConf, []byte("spooldir = "+spool+"\nasterisk_manager_conf = "+mc+"\nmysqlhost = 127.0.0.1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Check(okConf, nil); err != nil {
		t.Fatalf("Check(ok) = %v", err)
	}

	notDir := filepath.Join(dir, "file")
	if err := os.WriteFile(notDir, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	badConf := filepath.Join(dir, "bad.conf")
	if err := os.WriteFile(badConf, []byte("spooldir = "+notDir+"/x\nasterisk_manager_conf = "+dir+"/missing.conf\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := Check(badConf, nil)
	if !errors.Is(err, ErrCheck) {
		t.Fatalf("Check(bad) = %v, want ErrCheck", err)
	}
	if !strings.Contains(err.Error(), "bad.conf:1: spooldir:") {
		t.Errorf("Check(bad) = %v, want it to mention spooldir", err)
	}
	if strings.Contains(err.Error(), "asterisk_manager_conf") {
		t.Errorf("Check(bad) = %v: a missing manager.conf is a warning (the daemon starts without it)", err)
	}

	// The daemon starts without manager.conf, so check-config passes with a
	// warning (issue 18 item 7: check-config and the daemon agree).
	warnConf := filepath.Join(dir, "warn.conf")
	if err := os.WriteFile(warnConf, []byte("spooldir = "+spool+"\nasterisk_manager_conf = "+dir+"/missing.conf\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err = Check(warnConf, nil)
	if err != nil {
		t.Fatalf("Check(warn) = %v, want a warning only", err)
	}
	if len(c.Warnings) != 1 || !strings.Contains(c.Warnings[0], "warn.conf:2: asterisk_manager_conf:") {
		t.Errorf("Check(warn).Warnings = %q", c.Warnings)
	}
}

func FuzzParse(f *testing.F) {
	for _, name := range []string{"full.conf", "voipmonitor-ref.conf"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("[general]\nsipport = 1-2,3\n[x]\ny\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := Parse("fuzz.conf", b, nil)
		if (c == nil) == (err == nil) {
			t.Fatalf("Parse returned config %v and error %v", c != nil, err)
		}
	})
}

// TestPcapDumpZip: VoIPmonitor's compression keys, lzo/zstd written as gzip.
func TestPcapDumpZip(t *testing.T) {
	tests := []struct {
		in               string
		sip, rtp         bool
		sipLevel, rtpLvl int
		bad              bool
	}{
		{in: "", sip: true, rtp: true, sipLevel: 6, rtpLvl: 1},
		{in: "pcap_dump_zip = no\n", sipLevel: 6, rtpLvl: 1},
		{in: "pcap_dump_zip = no\npcap_dump_zip_rtp = lzo\n", rtp: true, sipLevel: 6, rtpLvl: 1},
		{in: "pcap_dump_zip_sip = no\npcap_dump_ziplevel_rtp = 9\n", rtp: true, sipLevel: 6, rtpLvl: 9},
		{in: "pcap_dump_zip_rtp = zstd\npcap_dump_ziplevel = -1\n", sip: true, rtp: true, sipLevel: 6, rtpLvl: 6},
		{in: "pcap_dump_zip_rtp = gzip\npcap_dump_ziplevel = 3\n", sip: true, rtp: true, sipLevel: 3, rtpLvl: 3},
		{in: "pcap_dump_zip_sip = bzip2\n", bad: true},
		{in: "pcap_dump_ziplevel_sip = 0\n", bad: true},
		{in: "pcap_dump_ziplevel_rtp = 10\n", bad: true},
	}
	for _, tt := range tests {
		c, err := Parse("t.conf", []byte(tt.in), nil)
		if tt.bad {
			if err == nil {
				t.Errorf("%q accepted", tt.in)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tt.in, err)
			continue
		}
		if c.PcapZipSIP != tt.sip || c.PcapZipRTP != tt.rtp || c.PcapZipLevelSIP != tt.sipLevel || c.PcapZipLevelRTP != tt.rtpLvl {
			t.Errorf("%q: sip %v/%d rtp %v/%d, want %v/%d %v/%d", tt.in, c.PcapZipSIP, c.PcapZipLevelSIP, c.PcapZipRTP,
				c.PcapZipLevelRTP, tt.sip, tt.sipLevel, tt.rtp, tt.rtpLvl)
		}
	}
}

// TestSecretsNotEchoed pins issue 17 item 9: a refused value of a key that
// holds key material or a password is never printed (check-config output
// is pasted into tickets), only its length and the reason.
func TestSecretsNotEchoed(t *testing.T) {
	for _, tc := range []struct{ key, val string }{
		{"manager_aes_key", "S3cr3tKeyMaterialXYZ"},
		{"manager_aes_iv", "AAECAwQFBgcICQoLDA0ODw=S3cr3t"},
		{"sensor_manager_key", "2:S3cr3tKeyMaterialXYZ:AQEBAQEBAQEBAQEBAQEBAQ=="},
		{"sensor_manager_key", "2:AAAAAAAAAAAAAAAAAAAAAA==:S3cr3tIVMaterial"},
	} {
		_, err := Parse("t.conf", []byte(tc.key+" = "+tc.val+"\n"), nil)
		if err == nil {
			t.Fatalf("%s = %s accepted", tc.key, tc.val)
		}
		if strings.Contains(err.Error(), "S3cr3t") || !strings.Contains(err.Error(), tc.key) {
			t.Errorf("%s: error shows the secret or not the key: %v", tc.key, err)
		}
	}
}

// TestRTPThreads: rtpthreads sets the media workers; unset means the number
// of cores (0 here), VoIPmonitor's 0 (no RTP threads) one goroutine.
func TestRTPThreads(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want int
		bad  bool
	}{
		{in: "", want: 0},
		{in: "rtpthreads = 4\n", want: 4},
		{in: "rtpthreads = 0\n", want: 1},
		{in: "rtpthreads = 1\n", want: 1},
		{in: "rtpthreads = -1\n", bad: true},
		{in: "rtpthreads = many\n", bad: true},
	} {
		c, err := Parse("t.conf", []byte(tt.in), nil)
		switch {
		case tt.bad && err == nil:
			t.Errorf("%q accepted", tt.in)
		case !tt.bad && err != nil:
			t.Errorf("%q: %v", tt.in, err)
		case !tt.bad && c.RTPThreads != tt.want:
			t.Errorf("%q: RTPThreads %d, want %d", tt.in, c.RTPThreads, tt.want)
		}
	}
}

// TestCleanDatabase: the cleandatabase family. cleandatabase is the default
// of cdr, register_*, sip_msg; a table's own key wins whatever the order
// (VoIPmonitor applies its keys sorted); rtp_stat and energy levels only
// have their own key; bad values are refused with the key named.
func TestCleanDatabase(t *testing.T) {
	type days struct{ cdr, regState, regFailed, regTime, sipMsg, energy, rtpStat int }
	tests := []struct {
		name     string
		in       string
		want     days
		wantSize int
		wantFrom int
		wantTo   int
		wantDrop bool
		wantErr  string
	}{
		{name: "absent", in: "", wantFrom: 1, wantTo: 5},
		{name: "general", in: "cleandatabase = 30\n", want: days{30, 30, 30, 30, 30, 0, 0}, wantFrom: 1, wantTo: 5},
		{name: "own key wins, before or after", in: "cleandatabase_cdr = 90\ncleandatabase = 30\ncleandatabase_sip_msg = 0\ncleandatabase_register_failed = 7\n",
			want: days{90, 30, 7, 30, 0, 0, 0}, wantFrom: 1, wantTo: 5},
		{name: "rtp_stat and energy levels", in: "cleandatabase = 30\ncleandatabase_rtp_stat = 2\ncleandatabase_cdr_rtp_energylevels = 3\n",
			want: days{30, 30, 30, 30, 30, 3, 2}, wantFrom: 1, wantTo: 5},
		{name: "size and hours", in: "cleandatabase_size = 500000\npartition_operations_enable_fromto = 22-3\n", wantSize: 500000, wantFrom: 22, wantTo: 3},
		{name: "one hour", in: "partition_operations_enable_fromto = 4\n", wantFrom: 4, wantTo: 4},
		{name: "disable drop", in: "disable_partition_operations_drop = yes\n", wantFrom: 1, wantTo: 5, wantDrop: true},
		{name: "disable all", in: "disable_partition_operations = yes\n", wantFrom: 1, wantTo: 5, wantDrop: true},
		{name: "negative", in: "cleandatabase = -1\n", wantErr: `t.conf:1: cleandatabase: bad value "-1": -1 outside 0-36600`},
		{name: "not a number", in: "cleandatabase_cdr = 30d\n", wantErr: `t.conf:1: cleandatabase_cdr: bad value "30d": not an integer`},
		{name: "size not a number", in: "cleandatabase_size = 5G\n", wantErr: `cleandatabase_size: bad value "5G": not an integer`},
		{name: "hour out of range", in: "partition_operations_enable_fromto = 1-24\n", wantErr: `partition_operations_enable_fromto: bad value "1-24": 24 outside 0-23`},
		{name: "hours not numbers", in: "partition_operations_enable_fromto = night\n", wantErr: `partition_operations_enable_fromto: bad value "night": not an integer`},
		{name: "disable not a boolean", in: "disable_partition_operations = maybe\n", wantErr: `disable_partition_operations: bad value "maybe": not a boolean`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse("t.conf", []byte(tc.in), nil)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := days{c.CleanDays("cdr"), c.CleanDays("register_state"), c.CleanDays("register_failed"), c.CleanDays("register_time_info"),
				c.CleanDays("sip_msg"), c.CleanDays("cdr_rtp_energylevels"), c.CleanDays("rtp_stat")}
			if got != tc.want {
				t.Errorf("days = %+v, want %+v", got, tc.want)
			}
			if c.CleanDatabaseSizeMB != tc.wantSize || c.PartitionOpsFrom != tc.wantFrom || c.PartitionOpsTo != tc.wantTo ||
				(c.DisablePartitionOps || c.DisablePartitionDrop) != tc.wantDrop {
				t.Errorf("size %d hours %d-%d drop off %v; want %d %d-%d %v", c.CleanDatabaseSizeMB, c.PartitionOpsFrom, c.PartitionOpsTo,
					c.DisablePartitionOps || c.DisablePartitionDrop, tc.wantSize, tc.wantFrom, tc.wantTo, tc.wantDrop)
			}
		})
	}
}
