package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-sql-driver/mysql"

	"pbx-agent/agent/dbconn"
	"pbx-agent/agent/dbtest"
)

// TestMySQLTLS: the mysqlssl* keys and mysql_connect_timeout reach the DSN;
// bad files and cipher names are errors at their key and line; what
// VoIPmonitor ignores is a warning.
func TestMySQLTLS(t *testing.T) {
	f := dbtest.WriteTLSFiles(t, t.TempDir())
	missing := filepath.Join(f.Dir, "missing.pem")
	base := "mysqlhost = db\nmysqlusername = u\nmysqldb = d\n"
	tests := []struct {
		name        string
		in          string
		wantTLS     bool   // tls= in the DSN
		wantTimeout string // the DSN's timeout= ("" = none)
		wantErr     string // "key: substring"; "" = loads
		wantWarn    string // substring of a warning
	}{
		{name: "no TLS", in: base, wantTimeout: "5s"},
		{name: "ca file", in: base + "mysqlsslcacert = " + f.CA + "\n", wantTLS: true, wantTimeout: "5s"},
		{name: "key pair", in: base + "mysqlsslkey = " + f.ClientKey + "\nmysqlsslcert = " + f.ClientCert + "\n", wantTLS: true, wantTimeout: "5s"},
		{name: "ca dir and ciphers", in: base + "mysqlsslcapath = " + f.Dir + "\nmysqlsslciphers = ECDHE-ECDSA-AES128-GCM-SHA256\n", wantTLS: true, wantTimeout: "5s"},
		{name: "cluster nodes", in: "mysqlhost = n1,n2\nmysqlusername = u\nmysqldb = d\nmysqlsslcacert = " + f.CA + "\n", wantTLS: true, wantTimeout: "5s"},
		{name: "unix socket stays without TLS", in: base + "mysqlsocket = /tmp/s.sock\nmysqlsslcacert = " + f.CA + "\n", wantTimeout: "5s"},
		{name: "connect timeout", in: base + "mysql_connect_timeout = 60\n", wantTimeout: "1m0s"},
		{name: "connect timeout 0", in: base + "mysql_connect_timeout = 0\n"},
		{name: "connect timeout bad", in: base + "mysql_connect_timeout = -1\n", wantErr: "mysql_connect_timeout: bad value"},
		{name: "ca missing", in: base + "mysqlsslcacert = " + missing + "\n", wantErr: "t.conf:4: mysqlsslcacert: " + dbconn.ErrTLS.Error()},
		{name: "ca not PEM", in: base + "mysqlsslcacert = " + f.ClientKey + "\n", wantErr: "mysqlsslcacert: "},
		{name: "capath missing", in: base + "mysqlsslcapath = " + missing + "\n", wantErr: "mysqlsslcapath: "},
		{name: "key of another cert", in: base + "mysqlsslcacert = " + f.CA + "\nmysqlsslkey = " + f.OtherKey + "\nmysqlsslcert = " + f.ClientCert + "\n", wantErr: "t.conf:5: mysqlsslkey: "},
		{name: "cert missing", in: base + "mysqlsslkey = " + f.ClientKey + "\nmysqlsslcert = " + missing + "\n", wantErr: "mysqlsslcert: "},
		{name: "unknown cipher", in: base + "mysqlsslcacert = " + f.CA + "\nmysqlsslciphers = AES128-SHA:HIGH\n", wantErr: `mysqlsslciphers: bad value "AES128-SHA:HIGH": unknown or unsupported cipher: "HIGH"`},
		{name: "TLS 1.3 cipher", in: base + "mysqlsslciphers = TLS_AES_128_GCM_SHA256\n", wantErr: "TLS 1.3"},
		{name: "key without cert", in: base + "mysqlsslcacert = " + f.CA + "\nmysqlsslkey = " + f.ClientKey + "\n", wantTLS: true, wantTimeout: "5s", wantWarn: "mysqlsslkey: ignored without mysqlsslcert"},
		{name: "ciphers alone", in: base + "mysqlsslciphers = AES128-SHA\n", wantTimeout: "5s", wantWarn: "t.conf:4: mysqlsslciphers: no effect alone (as in VoIPmonitor); TLS to MySQL stays off"},
		{name: "key alone", in: base + "mysqlsslkey = " + f.ClientKey + "\n", wantTimeout: "5s", wantWarn: "t.conf:4: mysqlsslkey: ignored without mysqlsslcert: no client certificate is sent (as in VoIPmonitor); TLS to MySQL stays off"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse("t.conf", []byte(tt.in), nil)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, ErrBadValue) {
					t.Fatalf("err = %v, want ErrBadValue with %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			dsn := c.MySQLDSN()
			mc, err := mysql.ParseDSN(dsn)
			if err != nil {
				t.Fatalf("%s: %v", dsn, err)
			}
			if got := mc.TLS != nil; got != tt.wantTLS || got && !strings.HasPrefix(mc.TLSConfig, "pbx-agent-") {
				t.Errorf("DSN %s: TLS %v, want %v", dsn, got, tt.wantTLS)
			}
			if got := fmt.Sprint(mc.Timeout); tt.wantTimeout != "" && got != tt.wantTimeout || tt.wantTimeout == "" && mc.Timeout != 0 {
				t.Errorf("DSN %s: timeout %s, want %q", dsn, got, tt.wantTimeout)
			}
			if w := strings.Join(c.Warnings, "\n"); tt.wantWarn != "" && !strings.Contains(w, tt.wantWarn) || tt.wantWarn == "" && w != "" {
				t.Errorf("warnings %q, want %q", w, tt.wantWarn)
			}
		})
	}
}

// TestMySQLTLSCheck: check-config reports a bad TLS file like Load does.
func TestMySQLTLSCheck(t *testing.T) {
	dir := t.TempDir()
	f := dbtest.WriteTLSFiles(t, dir)
	p := filepath.Join(dir, "t.conf")
	text := fmt.Sprintf("[general]\nspooldir = %s\nmysqlhost = db\nmysqlsslcacert = %s\n", filepath.Join(dir, "spool"), f.ServerKey)
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Check(p, nil); err == nil || !strings.Contains(err.Error(), "t.conf:4: mysqlsslcacert: ") {
		t.Fatalf("Check: %v, want the CA file refused at its line", err)
	}
}
