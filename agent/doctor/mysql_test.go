package doctor

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/go-sql-driver/mysql"

	"pbx-agent/agent/config"
	"pbx-agent/agent/dbtest"
)

// testAdmin opens the test MariaDB (scripts/mariadb-up.sh, `make test`
// starts it) as its all-privileged user, or skips.
func testAdmin(t *testing.T) (*sql.DB, *mysql.Config) {
	t.Helper()
	mc, err := mysql.ParseDSN(dbtest.DSN(t))
	if err != nil {
		t.Fatal(err)
	}
	mc.DBName = ""
	return dbtest.Open(t, mc.FormatDSN()), mc
}

func randName(prefix string) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

func TestMySQLChecks(t *testing.T) {
	admin, mc := testAdmin(t)
	host, port, _ := strings.Cut(mc.Addr, ":")
	dbName := randName("pbx_doc_")
	limited := randName("lim_")
	exec := func(q string) {
		t.Helper()
		if _, err := admin.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	exec("CREATE DATABASE `" + dbName + "`")
	exec("CREATE USER '" + limited + "'@'127.0.0.1' IDENTIFIED BY 'lim'")
	exec("CREATE USER '" + limited + "'@'localhost' IDENTIFIED BY 'lim'")
	exec("GRANT SELECT, INSERT ON `" + dbName + "`.* TO '" + limited + "'@'127.0.0.1'")
	exec("GRANT SELECT, INSERT ON `" + dbName + "`.* TO '" + limited + "'@'localhost'")
	t.Cleanup(func() {
		_, _ = admin.Exec("DROP DATABASE IF EXISTS `" + dbName + "`")
		_, _ = admin.Exec("DROP USER IF EXISTS '" + limited + "'@'127.0.0.1'")
		_, _ = admin.Exec("DROP USER IF EXISTS '" + limited + "'@'localhost'")
	})

	tests := []struct {
		name  string
		set   map[string]string
		setup func(t *testing.T)
		want  []want
	}{
		{
			name: "fresh database",
			want: []want{
				{check: "mysql", status: StatusOK, msg: "reachable"},
				{check: "mysql-grants", status: StatusOK},
				{check: "mysql-schema", status: StatusInfo, msg: "created on first start"},
			},
		},
		{
			name: "grant missing",
			set:  map[string]string{"mysqlusername": limited, "mysqlpassword": "lim"},
			want: []want{
				{check: "mysql", status: StatusOK},
				{check: "mysql-grants", status: StatusFail, msg: "lacks UPDATE, DELETE, CREATE, ALTER on " + dbName, hint: "GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, ALTER ON `" + dbName + "`.*"},
			},
		},
		{
			name: "wrong password",
			set:  map[string]string{"mysqlpassword": "nope"},
			want: []want{{check: "mysql", status: StatusFail, msg: "access denied", hint: "mysqlpassword"}},
		},
		{
			name: "unknown database",
			set:  map[string]string{"mysqldb": dbName + "_missing"},
			want: []want{{check: "mysql", status: StatusFail, msg: "does not exist", hint: "CREATE DATABASE"}},
		},
		{
			name: "schema from a newer agent",
			setup: func(t *testing.T) {
				exec("CREATE TABLE `" + dbName + "`.`system` (`id` INT AUTO_INCREMENT PRIMARY KEY, `type` VARCHAR(255), `content` TEXT)")
				exec("INSERT INTO `" + dbName + "`.`system` (`type`, `content`) VALUES ('" + schemaVersionType + "', '99')")
			},
			want: []want{{check: "mysql-schema", status: StatusFail, msg: "99 is newer", hint: "upgrade pbx-agent"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.setup != nil {
				tt.setup(t)
			}
			set := map[string]string{"mysqlhost": host, "mysqlport": port, "mysqldb": dbName, "mysqlusername": mc.User, "mysqlpassword": mc.Passwd}
			for k, v := range tt.set {
				set[k] = v
			}
			cfg, err := config.Parse("test", nil, set)
			if err != nil {
				t.Fatal(err)
			}
			env := Env{}
			env.defaults()
			r := &Report{}
			checkMySQL(context.Background(), r, &env, cfg)
			for _, w := range tt.want {
				found := false
				for _, f := range r.Find(w.check) {
					if f.Status == w.status && strings.Contains(f.Message, w.msg) && strings.Contains(f.Hint, w.hint) {
						found = true
					}
				}
				if !found {
					t.Errorf("no %s %s (msg %q hint %q) in %+v", w.status, w.check, w.msg, w.hint, r.Findings)
				}
			}
		})
	}
}
