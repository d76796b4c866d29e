package main

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"pbx-agent/agent/cdr"
	"pbx-agent/agent/config"
	"pbx-agent/agent/dbconn"
	"pbx-agent/agent/dbtest"
	"pbx-agent/internal/testkit"
	"pbx-agent/sniffer/call"
)

// TestMySQLTLS runs the agent's MySQL connections against a MariaDB that
// requires TLS (--require-secure-transport=ON, certificates of a test CA):
// with the mysqlssl* keys the CDR writer stores a CDR over TLS; without
// them the server refuses and the error says TLS is required; with the
// wrong CA the server's certificate is refused.
func TestMySQLTLS(t *testing.T) {
	srv := dbtest.StartTLSMariaDB(t)
	f := srv.Files
	load := func(t *testing.T, tlsKeys string) *config.Config {
		t.Helper()
		text := fmt.Sprintf("[general]\nspooldir = %s\nmysqlhost = %s\nmysqlport = %s\nmysqldb = pbx_tls\nmysqlusername = pbx\nmysqlpassword = pbx\nmysql_connect_timeout = 10\n%s",
			t.TempDir(), srv.Host, srv.Port, tlsKeys)
		cfg, err := config.Parse("tls.conf", []byte(text), nil)
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	ping := func(t *testing.T, dsn string) error {
		t.Helper()
		db, err := dbconn.Open(dsn, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		return db.PingContext(ctx)
	}

	t.Run("keys: TLS, CDR written", func(t *testing.T) {
		cfg := load(t, fmt.Sprintf("mysqlsslcacert = %s\nmysqlsslcert = %s\nmysqlsslkey = %s\nmysqlsslciphers = ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES128-GCM-SHA256\n",
			f.CA, f.ClientCert, f.ClientKey))
		o := cdrOptions(cfg)
		o.FlushInterval, o.RetryInterval = 20*time.Millisecond, 100*time.Millisecond
		w, err := cdr.New(o, testkit.Logger())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { w.Close() })
		testkit.Run(t, w.Run)
		start := time.Now().UTC().Truncate(time.Second)
		if err := w.Enqueue(&call.CDR{CallID: "tls-1@192.0.2.1", CallDate: start, CallEnd: start.Add(5 * time.Second),
			Caller: "100", Called: "200", CallerIP: netip.MustParseAddr("192.0.2.1"), CalledIP: netip.MustParseAddr("192.0.2.2"),
			CallerPort: 5060, CalledPort: 5060, LastSIPResponseNum: 200, LastSIPResponse: "200 OK"}); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		if err := w.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		for _, dsn := range []string{cfg.MySQLDSN(), webDSN(cfg)} {
			db, err := dbconn.Open(dsn, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			var n int
			var name, cipher string
			if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM cdr WHERE caller = '100' AND called = '200'").Scan(&n); err != nil || n != 1 {
				t.Errorf("cdr rows %d (%v), want 1", n, err)
			}
			if err := db.QueryRowContext(ctx, "SHOW SESSION STATUS LIKE 'Ssl_cipher'").Scan(&name, &cipher); err != nil || cipher == "" {
				t.Errorf("Ssl_cipher %q (%v): the connection is not encrypted", cipher, err)
			}
			t.Logf("%s: Ssl_cipher %s", dsn[:10], cipher)
		}
	})

	t.Run("no keys: refused, TLS required", func(t *testing.T) {
		err := ping(t, load(t, "").MySQLDSN())
		// MySQL answers 3159 (ErrTLSRequired), MariaDB 1045.
		if !errors.Is(err, dbconn.ErrTLSRequired) && !errors.Is(err, dbconn.ErrDeniedWithoutTLS) {
			t.Fatalf("err = %v, want ErrTLSRequired or ErrDeniedWithoutTLS", err)
		}
		t.Log(err)
	})

	t.Run("wrong CA: certificate refused", func(t *testing.T) {
		err := ping(t, load(t, "mysqlsslcacert = "+f.OtherCA+"\n").MySQLDSN())
		var ua x509.UnknownAuthorityError
		if !errors.Is(err, dbconn.ErrTLSVerify) || !errors.As(err, &ua) {
			t.Fatalf("err = %v, want ErrTLSVerify from an unknown authority", err)
		}
		t.Log(err)
	})

	t.Run("CA directory", func(t *testing.T) {
		if err := ping(t, load(t, "mysqlsslcapath = "+filepath.Dir(f.CA)+"\n").MySQLDSN()); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("client certificate of another CA: refused by the server", func(t *testing.T) {
		if err := ping(t, load(t, fmt.Sprintf("mysqlsslcert = %s\nmysqlsslkey = %s\n", f.OtherCert, f.OtherKey)).MySQLDSN()); err == nil {
			t.Fatal("connected")
		}
	})

	t.Run("key pair without CA: encrypted, server not verified", func(t *testing.T) {
		if err := ping(t, load(t, fmt.Sprintf("mysqlsslcert = %s\nmysqlsslkey = %s\n", f.ClientCert, f.ClientKey)).MySQLDSN()); err != nil {
			t.Fatal(err)
		}
	})
}
