package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"pbx-agent/agent/config"
	"pbx-agent/agent/dbconn"
	"pbx-agent/sniffer/fixture"
	"pbx-agent/webui"
)

// storedTimes are the datetime columns the writer fills for a replay of
// register-invite-reinvite-bye.pcap, as stored (strings), in a fixed order.
type storedTimes struct {
	cdr      []string // calldate|callend per row
	register []string // register_state/register_failed created_at
	spool    []string // the spool's YYYY-MM-DD/HH/MM directories
}

// TestDaemonZone: VoIPmonitor writes database times and names spool
// directories in local time unless utc = yes (tools.h:3349-3357). The
// daemon replaying one capture with utc = yes, then with timezone =
// America/New_York and = Asia/Kolkata, stores the same instants as the
// wall clock of each zone (cdr calldate/callend, register created_at,
// spool directories), and the web API (wired as the daemon wires it)
// finds the call by a date in that zone and gives back its true instant.
// Before utc/timezone took effect every zone stored the UTC strings.
func TestDaemonZone(t *testing.T) {
	pcap := fixture.Repo(t, "testdata", "pcap", "register-invite-reinvite-bye.pcap")
	for _, z := range []string{"America/New_York", "Asia/Kolkata"} {
		if _, err := time.LoadLocation(z); err != nil {
			t.Skipf("no zoneinfo for %s: %v", z, err)
		}
	}
	replay := func(t *testing.T, zoneLines string) (storedTimes, *config.Config, string) {
		t.Helper()
		mc, dbName := agentTestDB(t, "pbx_tz_")
		_, port, _ := strings.Cut(mc.Addr, ":")
		dir := t.TempDir()
		conf := agentDBConf(t, dir, "agent.conf", mc, dbName, port)
		f, err := os.OpenFile(conf, os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteString(zoneLines); err != nil {
			t.Fatal(err)
		}
		f.Close()
		var out syncBuffer
		if code := run(sigContext(), []string{"-config", conf, "-r", pcap, "--exit-after-replay"}, &out, &out); code != 0 {
			t.Fatalf("exit %d:\n%s", code, out.String())
		}
		cfg, err := config.Load(conf, nil)
		if err != nil {
			t.Fatal(err)
		}
		db := agentDBConn(t, mc, dbName)
		var st storedTimes
		q := func(dst *[]string, query string) {
			rows, err := db.Query(query)
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			for rows.Next() {
				var s string
				if err := rows.Scan(&s); err != nil {
					t.Fatal(err)
				}
				*dst = append(*dst, s)
			}
		}
		q(&st.cdr, "SELECT CONCAT(calldate, '|', callend) FROM cdr ORDER BY ID")
		q(&st.register, "SELECT created_at FROM register_state UNION ALL SELECT created_at FROM register_failed ORDER BY 1")
		dirs, _ := filepath.Glob(filepath.Join(dir, "spool", "*-*-*", "*", "*"))
		for _, d := range dirs {
			rel, _ := filepath.Rel(filepath.Join(dir, "spool"), d)
			st.spool = append(st.spool, rel)
		}
		sort.Strings(st.spool)
		return st, cfg, webDSN(cfg)
	}

	utc, _, _ := replay(t, "utc = yes\n")

	if len(utc.cdr) == 0 || len(utc.register) == 0 || len(utc.spool) == 0 {
		t.Fatalf("utc = yes stored %+v: want CDRs, REGISTERs and spool directories", utc)
	}
	shift := func(s string, loc *time.Location, layout string) string {
		tm, err := time.ParseInLocation(layout, s, time.UTC)
		if err != nil {
			t.Fatalf("%q: %v", s, err)
		}
		return tm.In(loc).Format(layout)
	}
	const dt = "2006-01-02 15:04:05.000"
	for _, tc := range []struct {
		name, line, zone string
	}{
		{"path New_York", "timezone = /usr/share/zoneinfo/America/New_York\n", "America/New_York"},
		{"name Kolkata", "timezone = Asia/Kolkata\n", "Asia/Kolkata"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if strings.Contains(tc.line, "/usr/share/zoneinfo") {
				if _, err := os.Stat("/usr/share/zoneinfo/" + tc.zone); err != nil {
					t.Skip(err)
				}
			}
			loc, _ := time.LoadLocation(tc.zone)
			got, cfg, dsn := replay(t, tc.line)
			if cfg.TimeLocation().String() != tc.zone {
				t.Fatalf("Location %s, want %s", cfg.TimeLocation(), tc.zone)
			}
			var want storedTimes
			for _, s := range utc.cdr {
				a, b, _ := strings.Cut(s, "|")
				want.cdr = append(want.cdr, shift(a, loc, dt)+"|"+shift(b, loc, dt))
			}
			for _, s := range utc.register {
				want.register = append(want.register, shift(s, loc, dt))
			}
			seen := map[string]bool{}
			for _, s := range utc.spool {
				if d := shift(s, loc, "2006-01-02/15/04"); !seen[d] {
					seen[d] = true
					want.spool = append(want.spool, d)
				}
			}
			sort.Strings(want.spool)
			for _, c := range []struct {
				what      string
				got, want []string
			}{{"cdr calldate|callend", got.cdr, want.cdr}, {"register created_at", got.register, want.register}, {"spool dirs", got.spool, want.spool}} {
				if strings.Join(c.got, ",") != strings.Join(c.want, ",") {
					t.Errorf("%s in %s: %q, want %q (UTC: utc = yes shifted)", c.what, tc.zone, c.got, c.want)
				}
			}
			checkWebZone(t, cfg, dsn, got.cdr[0], utc.cdr[0])
		})
	}
}

// checkWebZone: the web API as the daemon builds it finds the first CDR by
// its stored (local) calldate and reports its true instant: getVoipCalls'
// calldate is the stored string, listCdrIds' ISO date (flags=3) carries
// the zone's offset and names the UTC instant utc = yes stored.
func checkWebZone(t *testing.T, cfg *config.Config, dsn, stored, storedUTC string) {
	t.Helper()
	db, err := dbconn.Open(dsn, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	h := webui.New(webui.Options{DB: db, DisableAuth: true, Location: cfg.TimeLocation(), SensorID: cfg.IDSensor})
	srv := httptest.NewServer(h)
	defer srv.Close()
	get := func(task, params, extra string) map[string]any {
		resp, err := http.Get(srv.URL + "/php/api.php?task=" + task + "&params=" + url.QueryEscape(params) + extra)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil || resp.StatusCode != 200 {
			t.Fatalf("%s: %d %s", task, resp.StatusCode, b)
		}
		return m
	}
	calldate, _, _ := strings.Cut(stored, "|")
	cdrs := func(m map[string]any) []any { l, _ := m["cdr"].([]any); return l }
	from := calldate[:19]
	m := get("getVoipCalls", `{"startTime":"`+from+`","startTimeTo":"`+from+`.999"}`, "")
	if l := cdrs(m); len(l) != 1 || l[0].(map[string]any)["calldate"] != calldate {
		t.Errorf("getVoipCalls startTime %s (local): %v, want the CDR of calldate %s", from, m, calldate)
	}
	m = get("listCdrIds", `{"offset":"0","size":"1"}`, "&flags=3")
	l := cdrs(m)
	if len(l) != 1 {
		t.Fatalf("listCdrIds: %v", m)
	}
	iso, _ := l[0].(map[string]any)["calldate"].(string)
	at, err := time.Parse("2006-01-02T15:04:05.000-07:00", iso)
	utcDate, _, _ := strings.Cut(storedUTC, "|")
	if err != nil || at.UTC().Format("2006-01-02 15:04:05.000") != utcDate {
		t.Errorf("listCdrIds ISO calldate %q (%v): want the instant %s UTC", iso, err, utcDate)
	}
}

// TestDaemonBadTimezone: a timezone that names no zone stops the start
// with the file's line, as every bad value does; check-config says the same.
func TestDaemonBadTimezone(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "tz.conf")
	if err := os.WriteFile(conf, []byte("[general]\nmanagerport = 0\nhttp_bind =\nspooldir = "+dir+"\ntimezone = /usr/share/zoneinfo/Nowhere/Land\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"-config", conf}, {"check-config", "-config", conf}} {
		code, _, stderr := runCLI(t, args...)
		if code == 0 || !strings.Contains(stderr, "tz.conf:5: timezone: bad value") || strings.Contains(stderr, "panic") {
			t.Errorf("%v: exit %d, stderr %q; want tz.conf:5: timezone: bad value", args, code, stderr)
		}
	}
}
