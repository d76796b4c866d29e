package manager

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestSQLTimeInformation: sql_time_information answers "name,offset,now"
// for the zone the agent stores times in (manager.cpp:5018-5036): UTC,0
// with utc = yes, else the zone's name and current offset.
func TestSQLTimeInformation(t *testing.T) {
	ny, err1 := time.LoadLocation("America/New_York")
	kol, err2 := time.LoadLocation("Asia/Kolkata")
	if err1 != nil || err2 != nil {
		t.Skip("no zoneinfo")
	}
	tests := []struct {
		name     string
		loc      *time.Location
		zoneName string
		want     string // name,offset
	}{
		{"utc", time.UTC, "UTC", "UTC,0"},
		{"timezone path", ny, "", "America/New_York,"},
		{"named", kol, "Asia/Kolkata", "Asia/Kolkata,19800"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New(Config{Location: tt.loc, ZoneName: tt.zoneName})
			var b strings.Builder
			if err := s.sqlTimeInformation(context.Background(), &b, nil); err != nil {
				t.Fatal(err)
			}
			_, off := time.Now().In(tt.loc).Zone()
			want := tt.want
			if strings.HasSuffix(want, ",") {
				want += strconv.Itoa(off)
			}
			name, rest, _ := strings.Cut(b.String(), ",")
			offs, now, _ := strings.Cut(rest, ",")
			at, err := time.ParseInLocation(time.DateTime, now, tt.loc)
			if name+","+offs != want || err != nil || time.Since(at).Abs() > time.Minute {
				t.Errorf("reply %q; want %s,<now in %s>", b.String(), want, tt.loc)
			}
		})
	}
}
