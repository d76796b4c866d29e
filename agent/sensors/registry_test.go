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
