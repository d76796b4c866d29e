package config

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/go-sql-driver/mysql"
)

// TestInterfaceFilterKeys: interface_libpcap_filter entries (lines or
// ';'-separated) and mysql_timezone, with located errors for what the
// capture or the server could not take.
func TestInterfaceFilterKeys(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []InterfaceFilter
		wantTZ  string
		wantErr string
	}{
		{name: "lines", in: "interface = eth0,eth1\ninterface_libpcap_filter = eth0 : port 5060\ninterface_libpcap_filter = eth0:not port 5060\n",
			want: []InterfaceFilter{{"eth0", "port 5060"}, {"eth0", "not port 5060"}}},
		{name: "semicolons", in: "interface = eth0\ninterface_libpcap_filter = eth0 : udp port 5060; eth0 : not udp port 5060;\n",
			want: []InterfaceFilter{{"eth0", "udp port 5060"}, {"eth0", "not udp port 5060"}}},
		{name: "space before semicolon", in: "interface = eth0\ninterface_libpcap_filter = eth0 : udp port 5060 ; eth0 : not udp port 5060 # split\n",
			want: []InterfaceFilter{{"eth0", "udp port 5060"}, {"eth0", "not udp port 5060"}}},
		{name: "without section, equal lines kept", in: "interface = eth0\ninterface_libpcap_filter = eth0 : udp\ninterface_libpcap_filter = eth0 : udp\n",
			want: []InterfaceFilter{{"eth0", "udp"}, {"eth0", "udp"}}},
		{name: "error on its own line", in: "[general]\ninterface = eth0\ninterface_libpcap_filter = eth0 : udp\ninterface_libpcap_filter = eth0 : udp or\ninterface_libpcap_filter = eth0 : tcp\n",
			wantErr: `t.conf:4: interface_libpcap_filter: bad value "eth0 : udp or": eth0: capture: filter syntax error`},
		{name: "any", in: "interface = any\ninterface_libpcap_filter = any : udp\n", want: []InterfaceFilter{{"any", "udp"}}},
		{name: "interface not in interface", in: "interface = eth0\ninterface_libpcap_filter = eth1 : udp\n",
			wantErr: `t.conf:2: interface_libpcap_filter: interface "eth1" is not in interface (eth0)`},
		{name: "no interface at all", in: "interface_libpcap_filter = eth0 : udp\n",
			wantErr: `t.conf:1: interface_libpcap_filter: interface "eth0" is not in interface ()`},
		{name: "bad expression", in: "interface = eth0\ninterface_libpcap_filter = eth0 : port 5060 or ether host 1\n",
			wantErr: `t.conf:2: interface_libpcap_filter: bad value "eth0 : port 5060 or ether host 1": eth0: capture: filter not supported: "ether" at column 14`},
		{name: "syntax error in second entry", in: "interface = eth0\ninterface_libpcap_filter = eth0 : udp; eth0 : (udp\n",
			wantErr: `capture: filter syntax error: end of expression at column 5`},
		{name: "no colon", in: "interface = eth0\ninterface_libpcap_filter = eth0 port 5060\n",
			wantErr: `t.conf:2: interface_libpcap_filter: bad value "eth0 port 5060": entry "eth0 port 5060": want <interface> : <pcap-filter expression>`},
		{name: "no expression", in: "interface = eth0\ninterface_libpcap_filter = eth0 :\n",
			wantErr: `want <interface> : <pcap-filter expression>`},
		{name: "too long with filter", in: "interface = eth0\nfilter = " + longExpr(3000) + "\ninterface_libpcap_filter = eth0 : " + longExpr(3000) + "\n",
			wantErr: `t.conf:3: interface_libpcap_filter: eth0: with filter: capture: filter too large`},
		{name: "mysql_timezone offset", in: "mysql_timezone = +02:00\n", wantTZ: "+02:00"},
		{name: "mysql_timezone negative", in: "mysql_timezone = -05:30\n", wantTZ: "-05:30"},
		{name: "mysql_timezone name", in: "mysql_timezone = Europe/Prague\n", wantTZ: "Europe/Prague"},
		{name: "mysql_timezone SYSTEM", in: "mysql_timezone = SYSTEM\n", wantTZ: "SYSTEM"},
		{name: "mysql_timezone quote", in: "mysql_timezone = UTC'; DROP TABLE cdr; --\n",
			wantErr: `t.conf:1: mysql_timezone: bad value`},
		{name: "mysql_timezone minutes", in: "mysql_timezone = +02:75\n", wantErr: `want an offset such as +02:00`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse("t.conf", []byte(tt.in), nil)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, ErrBadValue) {
					t.Fatalf("err %v, want %q (ErrBadValue)", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(c.InterfaceFilters, tt.want) || c.MySQLTimezone != tt.wantTZ || len(c.Ignored) != 0 {
				t.Errorf("got %v %q ignored %v, want %v %q", c.InterfaceFilters, c.MySQLTimezone, c.Ignored, tt.want, tt.wantTZ)
			}
			mc, err := mysql.ParseDSN(c.MySQLDSN())
			if err != nil {
				t.Fatal(err)
			}
			if tt.wantTZ != "" && mc.Params["time_zone"] != "'"+tt.wantTZ+"'" {
				t.Errorf("DSN %s: time_zone %q, want '%s'", c.MySQLDSN(), mc.Params["time_zone"], tt.wantTZ)
			}
		})
	}
}

// longExpr is a valid expression of about n bytes.
func longExpr(n int) string {
	s := "host 10.0.0.1"
	for len(s) < n {
		s += " or host 10.0.0.1"
	}
	return s
}

// TestCaptureExpr: an entry's socket keeps (filter) and (entry), the text
// VoIPmonitor compiles; without filter the entry alone.
func TestCaptureExpr(t *testing.T) {
	c := Default()
	e := InterfaceFilter{"eth0", "port 5060"}
	if got := c.CaptureExpr(e); got != "port 5060" {
		t.Errorf("no filter: %q", got)
	}
	c.Filter = "vlan or udp"
	if got := c.CaptureExpr(e); got != "(vlan or udp) and (port 5060)" {
		t.Errorf("with filter: %q", got)
	}
}

// TestInterfaceFilterFlag: a command-line interface_libpcap_filter
// replaces the file's entries.
func TestInterfaceFilterFlag(t *testing.T) {
	c, err := Parse("t.conf", []byte("interface = lo\ninterface_libpcap_filter = lo : udp\n"),
		map[string]string{"interface_libpcap_filter": "lo : tcp"})
	if err != nil {
		t.Fatal(err)
	}
	if want := []InterfaceFilter{{"lo", "tcp"}}; !slices.Equal(c.InterfaceFilters, want) {
		t.Errorf("got %v, want %v", c.InterfaceFilters, want)
	}
}
