// Package dbtest gives tests a real MariaDB database of their own: the
// server is the one scripts/mariadb-up.sh starts (make test does) and names
// in PBX_TEST_MYSQL_DSN; each test gets a scratch database dropped at
// cleanup. Test support only; nothing in the agent imports it.
package dbtest

import (
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"os"
	"strings"
	"testing"

	"github.com/go-sql-driver/mysql"
)

// DSNEnv names the environment variable holding the test server's DSN.
const DSNEnv = "PBX_TEST_MYSQL_DSN"

// DSN returns the test server's DSN, or skips the test when none is set.
func DSN(tb testing.TB) string {
	tb.Helper()
	dsn := os.Getenv(DSNEnv)
	if dsn == "" {
		tb.Skipf("%s not set: start a MariaDB with `eval \"$(scripts/mariadb-up.sh)\"` (make test does)", DSNEnv)
	}
	return dsn
}

// Scratch creates an empty database named prefix + random hex on the
// server of dsn (create: CREATE DATABASE options, such as "DEFAULT
// CHARACTER SET latin1") and returns the DSN pointing at it; the database
// is dropped when the test ends.
func Scratch(tb testing.TB, dsn, prefix string, create ...string) string {
	tb.Helper()
	mc, err := mysql.ParseDSN(dsn)
	if err != nil {
		tb.Fatalf("bad %s: %v", DSNEnv, err)
	}
	var rb [4]byte
	_, _ = rand.Read(rb[:])
	name := prefix + hex.EncodeToString(rb[:])
	mc.DBName = ""
	admin, err := sql.Open("mysql", mc.FormatDSN())
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := admin.Exec(strings.Join(append([]string{"CREATE DATABASE `" + name + "`"}, create...), " ")); err != nil {
		admin.Close()
		tb.Fatalf("create scratch database: %v", err)
	}
	tb.Cleanup(func() {
		_, _ = admin.Exec("DROP DATABASE IF EXISTS `" + name + "`")
		admin.Close()
	})
	mc.DBName = name
	return mc.FormatDSN()
}

// Open opens dsn with the mysql driver; the handle is closed when the
// test ends.
func Open(tb testing.TB, dsn string) *sql.DB {
	tb.Helper()
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}
