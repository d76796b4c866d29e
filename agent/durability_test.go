package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"pbx-agent/agent/dbtest"
	"pbx-agent/internal/testkit"
	"pbx-agent/sniffer/fixture"
)

// The daemon is re-executed from the test binary, so it can be SIGKILLed
// like a real process.
func TestMain(m *testing.M) {
	if args := os.Getenv("PBX_AGENT_CHILD_ARGS"); args != "" {
		os.Exit(run(sigContext(), strings.Split(args, "\x1f"), os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

func startChild(t *testing.T, args ...string) (*exec.Cmd, *syncBuffer) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "PBX_AGENT_CHILD_ARGS="+strings.Join(args, "\x1f"))
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, &out
}

// TestNoCDRLostAcrossDatabaseOutageAndKill: the agent replays a capture
// while MySQL is unreachable (CDRs go to the fsync'ed disk queue), is then
// SIGKILLed, and a new agent started with MySQL reachable writes every CDR
// exactly once.
func TestNoCDRLostAcrossDatabaseOutageAndKill(t *testing.T) {
	mc, dbName := agentTestDB(t, "pbx_dur_")
	_, port, _ := strings.Cut(mc.Addr, ":")
	dir := t.TempDir()
	writeConf := func(name, mysqlPort string) string { return agentDBConf(t, dir, name, mc, dbName, mysqlPort) }
	closed := testkit.FreePort(t) // nothing listens there: the database is "down"
	down := writeConf("down.conf", fmt.Sprint(closed))
	up := writeConf("up.conf", port)
	pcap := fixture.Repo(t, "testdata", "pcap", "gensip-vlan42-frag400.pcap")

	// 1. Database down: replay, then the graceful exit parks the CDRs on disk.
	code := run(sigContext(), []string{"-config", down, "-r", pcap, "--exit-after-replay"}, &bytes.Buffer{}, &bytes.Buffer{})
	if code != 0 {
		t.Fatalf("replay with the database down: exit %d", code)
	}
	// 2. A second agent, still without database, is SIGKILLed mid-run: the
	// queue on disk must survive it untouched.
	child, out := startChild(t, "-config", down, "-r", pcap, "--realtime")
	time.Sleep(700 * time.Millisecond)
	_ = child.Process.Signal(syscall.SIGKILL)
	_ = child.Wait()
	// 3. Database up: a new agent writes what the queue holds, once.
	code = run(sigContext(), []string{"-config", up, "-r", fixture.Repo(t, "testdata", "pcap", "sip-auth-failure.pcapng"), "--exit-after-replay"}, &bytes.Buffer{}, &bytes.Buffer{})
	if code != 0 {
		t.Fatalf("agent with the database up: exit %d; killed child said:\n%s", code, out.String())
	}
	conn := agentDBConn(t, mc, dbName)
	var calls, distinct int
	if err := conn.QueryRow("SELECT COUNT(*), COUNT(DISTINCT n.fbasename) FROM cdr c JOIN cdr_next n ON n.cdr_ID = c.ID").Scan(&calls, &distinct); err != nil {
		t.Fatal(err)
	}
	// The capture holds 2 calls; the killed agent may have parked some of
	// its own before dying, never a duplicate of the first run's.
	if calls < 2 || distinct != 2 {
		t.Errorf("cdr rows %d with %d distinct calls, want the capture's 2 calls, no duplicates", calls, distinct)
	}
	var failed int
	if err := conn.QueryRow("SELECT COUNT(*) FROM register_failed").Scan(&failed); err != nil || failed != 1 {
		t.Errorf("register_failed rows %d (%v), want 1 from the last capture", failed, err)
	}
	t.Logf("after outage + SIGKILL: %d cdr rows for %d calls, %d register_failed", calls, distinct, failed)
}

// agentTestDB names a scratch database on the test MariaDB (dropped when
// the test ends; the agent creates it) or skips without one.
func agentTestDB(t *testing.T, prefix string) (*mysql.Config, string) {
	t.Helper()
	mc, err := mysql.ParseDSN(dbtest.DSN(t))
	if err != nil {
		t.Fatal(err)
	}
	var rb [4]byte
	_, _ = rand.Read(rb[:])
	dbName := prefix + hex.EncodeToString(rb[:])
	admin := mc.Clone()
	admin.DBName = ""
	adb, err := sql.Open("mysql", admin.FormatDSN())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = adb.Exec("DROP DATABASE IF EXISTS `" + dbName + "`"); adb.Close() })
	return mc, dbName
}

// agentDBConf writes a config in dir for an agent that stores its CDRs in
// dbName on mc's server (port mysqlPort) and its spool and queue in dir.
func agentDBConf(t *testing.T, dir, name string, mc *mysql.Config, dbName, mysqlPort string) string {
	t.Helper()
	host, _, _ := strings.Cut(mc.Addr, ":")
	p := filepath.Join(dir, name)
	text := fmt.Sprintf("[general]\nid_sensor = 5\nsipport = 5060\nspooldir = %s\nmanagerport = 0\nhttp_bind =\nmysqlhost = %s\nmysqlport = %s\nmysqldb = %s\nmysqlusername = %s\nmysqlpassword = %s\ncdr_queue_dir = %s\n",
		filepath.Join(dir, "spool"), host, mysqlPort, dbName, mc.User, mc.Passwd, filepath.Join(dir, "queue"))
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// agentDBConn opens dbName on mc's server.
func agentDBConn(t *testing.T, mc *mysql.Config, dbName string) *sql.DB {
	t.Helper()
	db := mc.Clone()
	db.DBName = dbName
	conn, err := sql.Open("mysql", db.FormatDSN())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// sigContext is cancelled by SIGINT or SIGTERM (a child process in tests
// uses it as main does).
func sigContext() context.Context {
	ctx, _ := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	return ctx
}
