package sensors

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestRegistryStates(t *testing.T) {
	db := openDB(t, scratchDB(t))
	r := register(t, db, 1, "127.0.0.1:5029", nil)
	// Rows as other agents (and a VoIPmonitor sniffer) left them.
	for _, q := range []string{
		"INSERT INTO sensors (id_sensor,name,host,port,agent_heartbeat) VALUES (2,'fresh','10.0.0.2',5029,UTC_TIMESTAMP() - INTERVAL 5 SECOND)",
		"INSERT INTO sensors (id_sensor,name,host,port,agent_heartbeat) VALUES (3,'stale','10.0.0.3',5029,UTC_TIMESTAMP() - INTERVAL 10 MINUTE)",
		"INSERT INTO sensors (id_sensor,name,host,port,agent_heartbeat,agent_stopped_at) VALUES (4,'stopped','10.0.0.4',5029,UTC_TIMESTAMP() - INTERVAL 20 SECOND,UTC_TIMESTAMP() - INTERVAL 19 SECOND)",
		"INSERT INTO sensors (id_sensor,name,host,port,agent_heartbeat,agent_stopped_at) VALUES (5,'restarted','10.0.0.5',5029,UTC_TIMESTAMP(),UTC_TIMESTAMP() - INTERVAL 60 SECOND)",
		"INSERT INTO sensors (id_sensor,name,host,port) VALUES (6,'voipmonitor','10.0.0.6',5029)",
		"INSERT INTO sensors (id_sensor,name) VALUES (7,'no address')",
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	all, err := r.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		id   int
		want State
		addr string
	}{
		{"self", 1, Online, "127.0.0.1:5029"},
		{"fresh heartbeat", 2, Online, "10.0.0.2:5029"},
		{"stale heartbeat", 3, Offline, "10.0.0.3:5029"},
		{"clean shutdown", 4, Stopped, "10.0.0.4:5029"},
		{"heartbeat after an old stop", 5, Online, "10.0.0.5:5029"},
		{"row without agent columns", 6, Unknown, "10.0.0.6:5029"},
		{"row without address", 7, Unknown, ""},
	}
	if len(all) != len(tests) {
		t.Fatalf("List: %d rows, want %d", len(all), len(tests))
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := all[i]
			if s.ID != tt.id || s.State != tt.want || s.Addr() != tt.addr {
				t.Errorf("got id %d %v %q, want id %d %v %q", s.ID, s.State, s.Addr(), tt.id, tt.want, tt.addr)
			}
		})
	}
	if _, err := r.Lookup(context.Background(), 99); !errors.Is(err, ErrUnknownSensor) {
		t.Errorf("Lookup(99) = %v, want ErrUnknownSensor", err)
	}
}

// TestRegistryRun: Run registers the row, keeps the heartbeat fresh, puts a
// deleted row back, and marks the sensor stopped when its context ends.
func TestRegistryRun(t *testing.T) {
	db := openDB(t, scratchDB(t))
	r, err := New(Options{DB: db, Self: Self{ID: 3, Name: "s3", Host: "127.0.0.1", Port: 5029, Version: "v1", KeyID: "abc"},
		Heartbeat: 100 * time.Millisecond, ListTTL: time.Nanosecond, Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	waitState := func(want State) Sensor {
		t.Helper()
		var s Sensor
		for range 200 {
			s, err = r.Lookup(context.Background(), 3)
			if err == nil && s.State == want {
				return s
			}
			time.Sleep(25 * time.Millisecond)
		}
		t.Fatalf("sensor 3: state %v (err %v), want %v", s.State, err, want)
		return s
	}
	s := waitState(Online)
	if s.Name != "s3" || s.Version != "v1" || s.KeyID != "abc" {
		t.Errorf("row = %+v", s)
	}
	// An operator deletes the row: the next heartbeat writes it again.
	if _, err := db.Exec("DELETE FROM sensors WHERE id_sensor = 3"); err != nil {
		t.Fatal(err)
	}
	waitState(Online)
	// Age the heartbeat: the next beat freshens it.
	if _, err := db.Exec("UPDATE sensors SET agent_heartbeat = UTC_TIMESTAMP() - INTERVAL 1 HOUR WHERE id_sensor = 3"); err != nil {
		t.Fatal(err)
	}
	waitState(Online)
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	waitState(Stopped)
}

// TestRegistryNoDB: a Registry needs a database.
func TestRegistryNoDB(t *testing.T) {
	if _, err := New(Options{}); !errors.Is(err, ErrNoDatabase) {
		t.Fatalf("New without DB = %v, want ErrNoDatabase", err)
	}
}

func TestAdvertiseHost(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"127.0.0.1", "127.0.0.1"},
		{"10.1.2.3", "10.1.2.3"},
		{"sensor.example", "sensor.example"},
	} {
		if got := AdvertiseHost(tt.in); got != tt.want {
			t.Errorf("AdvertiseHost(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	for _, in := range []string{"0.0.0.0", "::", ""} {
		if got := AdvertiseHost(in); got == in || got == "" {
			t.Errorf("AdvertiseHost(%q) = %q, want the host name", in, got)
		}
	}
}

// TestRegisterTimezone: the sensors row names the zone of the times the
// agent stores, as VoIPmonitor's saveTimezoneInformation
// (sql_db.cpp:9208-9256): UTC and 0 with utc = yes, else the zone's name
// and current offset; timezone_save_at is the moment in that zone.
func TestRegisterTimezone(t *testing.T) {
	ny, err1 := time.LoadLocation("America/New_York")
	kol, err2 := time.LoadLocation("Asia/Kolkata")
	if err1 != nil || err2 != nil {
		t.Skip("no zoneinfo")
	}
	db := openDB(t, scratchDB(t))
	tests := []struct {
		name     string
		loc      *time.Location
		zoneName string
		wantName string
	}{
		{"utc = yes (nil)", nil, "", "UTC"},
		{"utc = yes", time.UTC, "UTC", "UTC"},
		{"timezone path", ny, "", "America/New_York"},
		{"named", kol, "Asia/Kolkata", "Asia/Kolkata"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := New(Options{DB: db, Self: Self{ID: 10 + i, Name: "z", Version: "test", Location: tt.loc, ZoneName: tt.zoneName}, Logger: testLogger()})
			if err != nil {
				t.Fatal(err)
			}
			if err := r.EnsureSchema(context.Background()); err != nil {
				t.Fatal(err)
			}
			if err := r.Register(context.Background()); err != nil {
				t.Fatal(err)
			}
			var name, saved string
			var off int
			if err := db.QueryRow("SELECT timezone_name, timezone_offset, timezone_save_at FROM sensors WHERE id_sensor = ?", 10+i).Scan(&name, &off, &saved); err != nil {
				t.Fatal(err)
			}
			loc := tt.loc
			if loc == nil {
				loc = time.UTC
			}
			_, wantOff := time.Now().In(loc).Zone()
			at, err := time.ParseInLocation("2006-01-02 15:04:05", saved, loc)
			if name != tt.wantName || off != wantOff || err != nil || time.Since(at).Abs() > time.Minute {
				t.Errorf("timezone %q %d saved %q (%v); want %q %d and now in %s", name, off, saved, err, tt.wantName, wantOff, loc)
			}
		})
	}
}
