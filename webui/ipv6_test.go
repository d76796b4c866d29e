package webui

import (
	"encoding/json"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"pbx-agent/sniffer/fixture"
)

// TestIPv6Database reads an IPv6 call (sip_ipv6_udp.pcap), an IPv4 call
// and an IPv4 REGISTER back through the web APIs from a database the writer created with
// ipv6 = yes (varbinary(16) IP columns) and with ipv6 = no (int unsigned):
// addresses come out as text in both, IP filters take IPv6 addresses and
// prefixes on the first and match IPv4 ones in both.
func TestIPv6Database(t *testing.T) {
	const (
		v6caller = "fe80::21a:a0ff:fe07:32e0"
		v6called = "fec0::216:d3ff:fe0d:22c"
	)
	paths := []string{
		fixture.Repo(t, "testdata", "pcap", "register-invite-reinvite-bye.pcap"), // one IPv4 call and REGISTER
		filepath.Join(fixture.Shared(t, "public"), "sip_ipv6_udp.pcap"),
	}
	for _, ipv6 := range []bool{true, false} {
		name := "ipv6 = no"
		if ipv6 {
			name = "ipv6 = yes"
		}
		t.Run(name, func(t *testing.T) {
			e := newEnvWith(t, envSpec{paths: paths, ipv6: ipv6}, nil)
			cookie := e.login(t, "admin", "adminpw")
			listing := func(t *testing.T, filter string) (int, []map[string]any) {
				t.Helper()
				st, b, _ := e.do(t, "POST", "/php/model/sql.php?task=LISTING&module=CDR&fdatefrom=2000-01-01T00:00:00&limit=100"+filter, "", "Cookie", cookie)
				var out struct {
					Results []map[string]any `json:"results"`
				}
				if st == 200 {
					if err := json.Unmarshal(b, &out); err != nil {
						t.Fatalf("%s: %v", b, err)
					}
				}
				return st, out.Results
			}
			st, rows := listing(t, "")
			if st != 200 || len(rows) != 2 {
				t.Fatalf("listing: %d, %d rows", st, len(rows))
			}
			var v6ID string
			for _, r := range rows {
				switch r["sipcallerip"] {
				case "127.0.0.1":
					if r["sipcalledip"] != "127.0.0.1" || r["a_saddr"] != "127.0.0.1" {
						t.Errorf("IPv4 call %v: sipcalledip %v, a_saddr %v", r["ID"], r["sipcalledip"], r["a_saddr"])
					}
				case v6caller:
					v6ID, _ = r["ID"].(string)
					if !ipv6 || r["sipcalledip"] != v6called {
						t.Errorf("IPv6 call: sipcalledip %v", r["sipcalledip"])
					}
				case nil: // ipv6 = no: VoIPmonitor's int column has no room for it
					v6ID, _ = r["ID"].(string)
					if ipv6 || r["sipcalledip"] != nil {
						t.Errorf("IPv6 call: sipcallerip NULL, sipcalledip %v", r["sipcalledip"])
					}
				default:
					t.Errorf("sipcallerip %v", r["sipcallerip"])
				}
			}
			filters := []struct {
				filter string
				want   int
			}{
				{"127.0.0.1", 1},
				{"127.0.0.0/8", 1},
				{"0.0.0.0/0", 1}, // IPv4 prefixes match IPv4 addresses only
				{"10.0.0.0/8,127.0.0.1", 1},
				{"10.0.0.1", 0},
			}
			if ipv6 {
				filters = append(filters, []struct {
					filter string
					want   int
				}{{v6caller, 1}, {"fe80::/10", 1}, {"::/0", 1}, {"fec0::/10", 0}, {"fe80::1", 0}, {"fe80::/10,127.0.0.1", 2}}...)
			}
			for _, f := range filters {
				st, rows := listing(t, "&fsipcallerip="+url.QueryEscape(f.filter))
				if st != 200 || len(rows) != f.want {
					t.Errorf("fsipcallerip=%s: %d, %d rows, want %d", f.filter, st, len(rows), f.want)
				}
			}
			if st, rows := listing(t, "&fsipcalledip="+url.QueryEscape("fec0::/10")); ipv6 && (st != 200 || len(rows) != 1) || !ipv6 && st != 400 {
				t.Errorf("fsipcalledip=fec0::/10: %d, %d rows", st, len(rows))
			}

			// getVoipCalls
			st, b, _ := e.do(t, "GET", "/php/api.php?task=getVoipCalls&user=admin&password=adminpw&params="+
				url.QueryEscape(`{"startTime":"2000-01-01","endTime":"2100-01-01"}`), "")
			if st != 200 || strings.Contains(string(b), v6caller) != ipv6 || !strings.Contains(string(b), `"sipcallerip":"127.0.0.1"`) {
				t.Errorf("getVoipCalls: %d %s", st, b)
			}
			// The console's call page and registrations.
			st, b, _ = e.do(t, "GET", "/console/api/call?id="+v6ID, "", "Cookie", cookie)
			var call struct {
				CDR map[string]any `json:"cdr"`
			}
			if err := json.Unmarshal(b, &call); err != nil || st != 200 {
				t.Fatalf("console call %s: %d %v %s", v6ID, st, err, b)
			}
			if want := map[bool]any{true: v6called, false: nil}[ipv6]; call.CDR["sipcalledip"] != want {
				t.Errorf("console call: sipcalledip %v, want %v", call.CDR["sipcalledip"], want)
			}
			regIP, aton := "127.0.0.1", "INET_ATON"
			if ipv6 {
				regIP, aton = v6caller, "INET6_ATON"
			}
			if _, err := e.db.Exec("INSERT INTO register_state (id_sensor, created_at, sipcallerip, sipcalledip, to_num, to_domain, state) VALUES (1, '2024-12-31 00:00:00', "+
				aton+"(?), "+aton+"('127.0.0.1'), '1001', 'pbx.test', 1)", regIP); err != nil {
				t.Fatal(err)
			}
			st, b, _ = e.do(t, "GET", "/console/api/registrations?days=7", "", "Cookie", cookie)
			if st != 200 || !strings.Contains(string(b), `"ip":"`+regIP+`"`) {
				t.Errorf("console registrations: %d %s", st, b)
			}
		})
	}
}
