package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestZoneKeys: utc and timezone, VoIPmonitor's keys, set the zone of
// stored times (Location); a timezone that names no zone is a located
// config error at start-up, not a crash or a silent UTC.
func TestZoneKeys(t *testing.T) {
	const ny = "/usr/share/zoneinfo/America/New_York"
	if _, err := os.Stat(ny); err != nil {
		t.Skipf("no system zoneinfo: %v", err)
	}
	notZone := filepath.Join(t.TempDir(), "notzone")
	if err := os.WriteFile(notZone, []byte("Europe/Prague\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		in       string
		wantZone string // Location.String(); "Local" = time.Local
		wantErr  string
	}{
		{name: "default is the process's zone", in: "", wantZone: "Local"},
		{name: "utc = no is the default", in: "utc = no\n", wantZone: "Local"},
		{name: "utc = yes", in: "utc = yes\n", wantZone: "UTC"},
		{name: "utc = 1 as in VoIPmonitor's sample", in: "utc = 1\n", wantZone: "UTC"},
		{name: "sql_time_utc alias", in: "sql_time_utc = yes\n", wantZone: "UTC"},
		{name: "zoneinfo path", in: "timezone = " + ny + "\n", wantZone: "America/New_York"},
		{name: "zone name", in: "timezone = Asia/Kolkata\n", wantZone: "Asia/Kolkata"},
		{name: "POSIX TZ colon", in: "timezone = :Asia/Kolkata\n", wantZone: "Asia/Kolkata"},
		{name: "empty timezone is unset", in: "timezone =\n", wantZone: "Local"},
		{name: "utc wins over timezone", in: "timezone = " + ny + "\nutc = yes\n", wantZone: "UTC"},
		{name: "timezone after utc = yes", in: "utc = yes\ntimezone = Asia/Kolkata\n", wantZone: "UTC"},
		{name: "missing zoneinfo file", in: "\ntimezone = /usr/share/zoneinfo/Mars/Olympus\n",
			wantErr: `t.conf:2: timezone: bad value "/usr/share/zoneinfo/Mars/Olympus": config: unknown time zone: open /usr/share/zoneinfo/Mars/Olympus: no such file or directory`},
		{name: "not a zoneinfo file", in: "timezone = " + notZone + "\n", wantErr: "not a zoneinfo file"},
		{name: "unknown zone name", in: "timezone = Mars/Olympus\n", wantErr: `timezone: bad value "Mars/Olympus": config: unknown time zone: unknown zone`},
		{name: "bad utc", in: "utc = maybe\n", wantErr: `utc: bad value "maybe": not a boolean`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse("t.conf", []byte(tt.in), nil)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
				}
				var ce *Error
				if !errors.As(err, &ce) || ce.Line == 0 && ce.File != "flag" {
					t.Fatalf("err %v is not a located *config.Error", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("err = %v", err)
			}
			if tt.wantZone == "Local" { // its name is TZ's when TZ is set
				if c.Location != time.Local {
					t.Fatalf("Location = %s, want time.Local", c.Location)
				}
			} else if got := c.Location.String(); got != tt.wantZone {
				t.Fatalf("Location = %s, want %s", got, tt.wantZone)
			}
			if len(c.Ignored) != 0 {
				t.Fatalf("Ignored = %v: utc/timezone have effect now", c.Ignored)
			}
		})
	}
	// The zone loaded from the file is the real one: 2024-07-01 12:00 UTC
	// is 08:00 in New York (EDT) and 17:30 in Kolkata.
	for _, z := range []struct{ in, want string }{
		{"timezone = " + ny, "08:00"}, {"timezone = Asia/Kolkata", "17:30"}, {"utc = yes", "12:00"},
	} {
		c, err := Parse("t.conf", []byte(z.in+"\n"), nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := time.Date(2024, 7, 1, 12, 0, 0, 0, time.UTC).In(c.Location).Format("15:04"); got != z.want {
			t.Errorf("%s: 12:00 UTC is %s, want %s", z.in, got, z.want)
		}
	}
	for _, z := range []struct{ in, want string }{
		{"utc = yes", "UTC"}, {"timezone = " + ny, "America/New_York"}, {"timezone = Asia/Kolkata", "Asia/Kolkata"},
	} {
		c, err := Parse("t.conf", []byte(z.in+"\n"), nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := c.ZoneName(); got != z.want {
			t.Errorf("%s: ZoneName %q, want %q", z.in, got, z.want)
		}
	}
	if got := (&Config{}).TimeLocation(); got != time.UTC {
		t.Errorf("zero Config TimeLocation = %v, want UTC", got)
	}
}
