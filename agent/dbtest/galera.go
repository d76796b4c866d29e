package dbtest

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"pbx-agent/sniffer/fixture"
)

// GaleraEnv names the variable holding the test cluster's client addresses,
// node 1 first (scripts/galera-up.sh prints it; make cluster-test sets it).
const GaleraEnv = "PBX_TEST_GALERA_ADDRS"

// Cluster is the 3-node MariaDB Galera cluster of scripts/galera-up.sh.
type Cluster struct {
	Dir            string   // the script's DIR ($PBX_GALERA_DIR)
	Addrs          []string // client address of node 1, 2, 3
	User, Password string
	repo           string
	mu             sync.Mutex // one start or stop at a time
}

// Galera returns the test cluster, or skips the test when none is running.
func Galera(tb testing.TB) *Cluster {
	tb.Helper()
	addrs, dir := os.Getenv(GaleraEnv), os.Getenv("PBX_GALERA_DIR")
	if addrs == "" || dir == "" {
		tb.Skipf("%s not set: start a cluster with `eval \"$(scripts/galera-up.sh .tmp/galera)\"` (make cluster-test does)", GaleraEnv)
	}
	c := &Cluster{Dir: dir, Addrs: strings.Split(addrs, ","), User: "pbx", Password: "pbx", repo: fixture.RepoRoot(tb)}
	if u := os.Getenv("PBX_TEST_GALERA_USER"); u != "" {
		c.User, c.Password = u, os.Getenv("PBX_TEST_GALERA_PASSWORD")
	}
	return c
}

// DSN is a plain DSN for database db (may be "") on node n (1-based).
func (c *Cluster) DSN(n int, db string) string {
	mc := mysql.NewConfig()
	mc.User, mc.Passwd, mc.Net, mc.Addr, mc.DBName = c.User, c.Password, "tcp", c.Addrs[n-1], db
	mc.Timeout = 5 * time.Second
	return mc.FormatDSN()
}

// List is the nodes' addresses in the order given (mysqlhost's value).
func (c *Cluster) List(order ...int) string {
	var s []string
	for _, n := range order {
		s = append(s, c.Addrs[n-1])
	}
	return strings.Join(s, ",")
}

// Open opens database db (may be "") on node n; closed when the test ends.
func (c *Cluster) Open(tb testing.TB, n int, db string) *sql.DB {
	tb.Helper()
	d, err := sql.Open("mysql", c.DSN(n, db))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { d.Close() })
	return d
}

// Scratch creates an empty database (prefix + random hex) through node 1
// (the CREATE replicates to every node) and drops it when the test ends.
func (c *Cluster) Scratch(tb testing.TB, prefix string) string {
	tb.Helper()
	dsn := Scratch(tb, c.DSN(1, ""), prefix)
	mc, err := mysql.ParseDSN(dsn)
	if err != nil {
		tb.Fatal(err)
	}
	return mc.DBName
}

// Running reports whether node n's server process is alive.
func (c *Cluster) Running(n int) bool {
	b, err := os.ReadFile(filepath.Join(c.Dir, fmt.Sprintf("node%d", n), "server.pid"))
	if err != nil {
		return false
	}
	return exec.Command("kill", "-0", strings.TrimSpace(string(b))).Run() == nil
}

// Kill SIGKILLs node n (a crash). The node is started again when the test
// ends if it is still down, so the cluster is whole for the next test.
func (c *Cluster) Kill(tb testing.TB, n int) {
	tb.Helper()
	c.script(tb, "galera-down.sh", c.Dir, "--node", fmt.Sprint(n), "--kill")
	tb.Cleanup(func() {
		if !c.Running(n) {
			c.Start(tb, n)
		}
	})
}

// Start starts node n again; it returns once the node is a synced member.
func (c *Cluster) Start(tb testing.TB, n int) {
	tb.Helper()
	c.script(tb, "galera-up.sh", c.Dir, "--node", fmt.Sprint(n))
}

func (c *Cluster) script(tb testing.TB, name string, args ...string) {
	tb.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "bash", append([]string{filepath.Join(c.repo, "scripts", name)}, args...)...).CombinedOutput()
	if err != nil {
		tb.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// Status is SHOW GLOBAL STATUS variable name of each running node.
func (c *Cluster) Status(tb testing.TB, name string) map[int]int64 {
	tb.Helper()
	out := map[int]int64{}
	for n := 1; n <= len(c.Addrs); n++ {
		if !c.Running(n) {
			continue
		}
		d, err := sql.Open("mysql", c.DSN(n, ""))
		if err != nil {
			tb.Fatal(err)
		}
		var k string
		var v int64
		err = d.QueryRow("SHOW GLOBAL STATUS LIKE '"+name+"'").Scan(&k, &v)
		d.Close()
		if err != nil {
			tb.Fatalf("node %d: SHOW STATUS %s: %v", n, name, err)
		}
		out[n] = v
	}
	return out
}

// Growth sums after-before over the nodes that ran at both times without
// a restart in between (a restart resets a node's counters).
func Growth(before, after map[int]int64) int64 {
	var sum int64
	for n, a := range after {
		if b, ok := before[n]; ok && a >= b {
			sum += a - b
		}
	}
	return sum
}
