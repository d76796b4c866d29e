package dbconn

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"pbx-agent/agent/dbtest"
)

func TestHosts(t *testing.T) {
	tests := []struct {
		in   string
		want string // joined with ","; "" = error
	}{
		{"db", "db:3306"},
		{"db:3307", "db:3307"},
		{"10.0.0.1", "10.0.0.1:3306"},
		{"::1", "[::1]:3306"},
		{"[::1]", "[::1]:3306"},
		{"[fe80::1]:3310", "[fe80::1]:3310"},
		{"n1,n2:3307, n3 ,", "n1:3306,n2:3307,n3:3306"},
		{"127.0.0.1:1,127.0.0.1:2,127.0.0.1:3", "127.0.0.1:1,127.0.0.1:2,127.0.0.1:3"},
		{"", ""},
		{" , ", ""},
		{"db:0", ""},
		{"db:70000", ""},
		{"db:x", ""},
		{":3306", ""},
		{"[::1", ""},
		{"a b", ""},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := Hosts(tt.in, 3306)
			if tt.want == "" {
				if err == nil || !errors.Is(err, ErrAddress) {
					t.Fatalf("Hosts(%q) = %v, %v; want ErrAddress", tt.in, got, err)
				}
				return
			}
			if err != nil || strings.Join(got, ",") != tt.want {
				t.Fatalf("Hosts(%q) = %v, %v; want %s", tt.in, got, err, tt.want)
			}
		})
	}
}

// FuzzHosts: any mysqlhost value parses or is refused, and what parses is
// a list of host:port the standard library splits back.
func FuzzHosts(f *testing.F) {
	for _, s := range []string{"db", "n1,n2:3307", "[::1]:3306", "::1", "a:b:c", ",,,"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		hosts, err := Hosts(s, 3306)
		if err != nil {
			return
		}
		for _, h := range hosts {
			if _, _, err := net.SplitHostPort(h); err != nil || strings.Contains(h, ",") {
				t.Fatalf("Hosts(%q) gave %q: %v", s, h, err)
			}
		}
	})
}

// TestFailover: a pool over two "nodes" (two proxies to the test MariaDB)
// uses the first; when it is cut mid-use, statements fail at most once and
// then run through the second; a list whose first node refuses
// connections starts on the second.
func TestFailover(t *testing.T) {
	mc, err := mysql.ParseDSN(dbtest.DSN(t))
	if err != nil {
		t.Fatal(err)
	}
	if mc.Net != "tcp" {
		t.Skip("the failover test needs a TCP DSN")
	}
	a, b := dbtest.StartProxy(t, mc.Addr), dbtest.StartProxy(t, mc.Addr)
	mc.Net, mc.Addr = Net, a.Addr()+","+b.Addr()
	db, err := Open(mc.FormatDSN(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.SetMaxIdleConns(4)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	port := func() string {
		var p string
		if err := db.QueryRowContext(ctx, "SELECT @@port").Scan(&p); err != nil {
			return "error: " + err.Error()
		}
		return p
	}
	for range 5 {
		if p := port(); strings.HasPrefix(p, "error") {
			t.Fatalf("through node 1: %s", p)
		}
	}
	if a.Accepted() == 0 {
		t.Fatal("node 1 (first in the list) got no connection")
	}
	a.Cut()
	failures := 0
	for range 10 {
		if p := port(); strings.HasPrefix(p, "error") {
			failures++
		}
	}
	if failures > 1 {
		t.Errorf("%d of 10 statements failed after node 1 was cut; want at most the one in flight", failures)
	}
	if b.Accepted() == 0 {
		t.Error("node 2 got no connection after node 1 was cut")
	}

	// A list whose first node refuses connections starts on the second.
	c := dbtest.StartProxy(t, strings.Split(mc.Addr, ",")[1])
	mc.Addr = a.Addr() + "," + c.Addr()
	db2, err := Open(mc.FormatDSN(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db2.Close()
	if err := db2.PingContext(ctx); err != nil {
		t.Fatalf("ping with node 1 down: %v", err)
	}
	// Plain database/sql with the registered network fails over when dialling.
	plain, err := sql.Open("mysql", mc.FormatDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	if err := plain.PingContext(ctx); err != nil {
		t.Fatalf("sql.Open on %s with node 1 down: %v", Net, err)
	}
	// Every node down: a clear error naming each.
	c.Cut()
	db3, err := Open(mc.FormatDSN(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db3.Close()
	if err := db3.PingContext(ctx); !errors.Is(err, ErrNoNode) || !strings.Contains(err.Error(), c.Addr()) {
		t.Errorf("ping with every node down: %v; want ErrNoNode naming each node", err)
	}
}

func TestReadOnly(t *testing.T) {
	for q, want := range map[string]bool{
		"SELECT 1": true, " select c.ID FROM cdr c": true, "(SELECT 1) UNION (SELECT 2)": true,
		"SHOW STATUS LIKE 'wsrep_ready'": true, "SELECT `k` FROM t WHERE k IN (?) FOR UPDATE": false,
		"INSERT INTO t VALUES (1)": false, "UPDATE t SET a = 1": false, "": false, "SEL": false,
	} {
		if got := readOnly(q); got != want {
			t.Errorf("readOnly(%q) = %v, want %v", q, got, want)
		}
	}
}

// TestGaleraNodeNotReady: node 1 of the Galera test cluster is cut off from
// the others (gmcast.isolate), so it is up but no longer a member of the
// primary component (wsrep_ready = OFF, queries refused with 1047). A pool
// over nodes 1 and 2 that was using node 1 moves to node 2 without a failed
// read, and a new pool skips node 1 at connect.
func TestGaleraNodeNotReady(t *testing.T) {
	cl := dbtest.Galera(t)
	dsn := fmt.Sprintf("%s:%s@%s(%s)/mysql", cl.User, cl.Password, Net, cl.List(1, 2))
	db, err := Open(dsn, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// A read that needs a table: a node outside the primary component
	// refuses it (a SELECT without tables would still be answered).
	port := func(d *sql.DB) (string, error) {
		var p string
		var n int
		err := d.QueryRowContext(ctx, "SELECT @@port, COUNT(*) FROM mysql.db").Scan(&p, &n)
		return p, err
	}
	_, port1, _ := net.SplitHostPort(cl.Addrs[0])
	_, port2, _ := net.SplitHostPort(cl.Addrs[1])
	if p, err := port(db); err != nil || p != port1 {
		t.Fatalf("before: port %s (%v), want node 1's %s", p, err, port1)
	}

	admin := cl.Open(t, 1, "")
	isolate := func(on int) {
		if _, err := admin.Exec(fmt.Sprintf("SET GLOBAL wsrep_provider_options = 'gmcast.isolate=%d'", on)); err != nil {
			t.Fatalf("gmcast.isolate=%d: %v", on, err)
		}
	}
	state := func() string {
		var k, v string
		_ = admin.QueryRow("SHOW STATUS LIKE 'wsrep_local_state_comment'").Scan(&k, &v)
		var r string
		_ = admin.QueryRow("SHOW STATUS LIKE 'wsrep_ready'").Scan(&k, &r)
		return v + "/" + r
	}
	isolate(1)
	t.Cleanup(func() {
		isolate(0)
		for i := 0; i < 120 && state() != "Synced/ON"; i++ {
			time.Sleep(250 * time.Millisecond)
		}
		if s := state(); s != "Synced/ON" {
			t.Errorf("node 1 did not rejoin: %s", s)
		}
	})
	for i := 0; ; i++ {
		if strings.HasSuffix(state(), "/OFF") {
			break
		}
		if i == 120 {
			t.Fatalf("node 1 still ready 30 s after isolation: %s", state())
		}
		time.Sleep(250 * time.Millisecond)
	}

	for i := range 5 {
		if p, err := port(db); err != nil || p != port2 {
			t.Errorf("read %d with node 1 not ready: port %s (%v), want node 2's %s", i, p, err, port2)
		}
	}
	fresh, err := Open(dsn, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	if p, err := port(fresh); err != nil || p != port2 {
		t.Errorf("new pool with node 1 not ready: port %s (%v), want node 2's %s", p, err, port2)
	}
}

// TestTimeZoneRefused (MariaDB): the session time_zone mysql_timezone sets
// (the DSN's time_zone) is applied at connect: an offset is the session's
// zone; a zone the server does not know, or an offset outside its range,
// fails the connection with ErrTimeZone, which says what to do.
func TestTimeZoneRefused(t *testing.T) {
	mc, err := mysql.ParseDSN(dbtest.DSN(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		zone, want string // want "" = refused
	}{
		{"+02:00", "+02:00"}, {"-05:30", "-05:30"}, {"SYSTEM", "SYSTEM"}, {"Nowhere/Land", ""}, {"+15:00", ""},
	} {
		t.Run(tt.zone, func(t *testing.T) {
			c := mc.Clone()
			c.Params = map[string]string{"time_zone": "'" + tt.zone + "'"}
			db, err := OpenConfig(c, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			var got string
			err = db.QueryRow("SELECT @@session.time_zone").Scan(&got)
			switch {
			case tt.want == "" && !errors.Is(err, ErrTimeZone):
				t.Errorf("err %v, want ErrTimeZone", err)
			case tt.want != "" && (err != nil || got != tt.want):
				t.Errorf("time_zone %q (%v), want %q", got, err, tt.want)
			}
		})
	}
}
