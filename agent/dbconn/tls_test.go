package dbconn

import (
	"crypto/tls"
	"crypto/x509"
	"database/sql/driver"
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"pbx-agent/agent/dbtest"
)

func TestParseCiphers(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []uint16
		wantErr string // substring; "" = no error
	}{
		{"openssl names", "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-AES128-GCM-SHA256",
			[]uint16{tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384, tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256}, ""},
		{"lower case, commas and spaces", "ecdhe-ecdsa-chacha20-poly1305, AES128-SHA",
			[]uint16{tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, tls.TLS_RSA_WITH_AES_128_CBC_SHA}, ""},
		{"IANA name", "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}, ""},
		{"legacy suite", "DES-CBC3-SHA", []uint16{tls.TLS_RSA_WITH_3DES_EDE_CBC_SHA}, ""},
		{"unknown name", "ECDHE-RSA-AES128-GCM-SHA256:CAMELLIA256-SHA", nil, `"CAMELLIA256-SHA"`},
		{"keyword", "HIGH:!aNULL", nil, `"HIGH"`},
		{"exclusion", "!aNULL", nil, `"!aNULL"`},
		{"TLS 1.3 suite", "TLS_AES_256_GCM_SHA384", nil, "TLS 1.3"},
		{"empty", " : ", nil, "empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseCiphers(tt.in)
			if tt.wantErr != "" {
				if err == nil || !errors.Is(err, ErrCipher) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want ErrCipher naming %s", err, tt.wantErr)
				}
				return
			}
			if err != nil || !slices.Equal(got, tt.want) {
				t.Fatalf("ParseCiphers(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
			}
		})
	}
}

// TestOpenSSLSuites: every OpenSSL name of the table is a suite crypto/tls
// implements.
func TestOpenSSLSuites(t *testing.T) {
	for o := range opensslSuites {
		if _, err := ParseCiphers(o); err != nil {
			t.Errorf("%s: %v", o, err)
		}
	}
}

func TestTLSConfig(t *testing.T) {
	dir := t.TempDir()
	f := dbtest.WriteTLSFiles(t, dir)
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	notPEM := write("not.pem", "not a certificate\n")
	missing := filepath.Join(dir, "missing.pem")
	hashDir := filepath.Join(dir, "capath")
	crtDir := filepath.Join(dir, "crtdir")
	emptyDir := filepath.Join(dir, "empty")
	badDir := filepath.Join(dir, "baddir")
	for _, d := range []string{hashDir, crtDir, emptyDir, badDir} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	ca, _ := os.ReadFile(f.CA)
	for p, b := range map[string][]byte{
		filepath.Join(hashDir, "5d1ac8f2.0"): ca,
		filepath.Join(hashDir, "README"):     []byte("ignored"),
		filepath.Join(crtDir, "db-ca.crt"):   ca,
		filepath.Join(badDir, "db-ca.crt"):   ca,
		filepath.Join(badDir, "broken.pem"):  []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"),
		filepath.Join(crtDir, "key.pem"):     []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"),
		filepath.Join(emptyDir, "notes.pem"): []byte("no PEM here"),
	} {
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}

	tests := []struct {
		name       string
		in         TLS
		wantOff    bool   // no TLS
		wantVerify bool   // server chain verified
		wantCert   bool   // client certificate sent
		wantErr    string // the TLSError's Setting; "" = no error
		wantIs     error
	}{
		{name: "nothing", in: TLS{}, wantOff: true},
		{name: "ciphers alone", in: TLS{Ciphers: "AES128-SHA"}, wantOff: true},
		{name: "key without cert", in: TLS{Key: f.ClientKey}, wantOff: true},
		{name: "ca file", in: TLS{CA: f.CA}, wantVerify: true},
		{name: "ca dir hash-named", in: TLS{CAPath: hashDir}, wantVerify: true},
		{name: "ca dir *.crt, a key skipped", in: TLS{CAPath: crtDir}, wantVerify: true},
		{name: "key pair only: encrypted, not verified", in: TLS{Key: f.ClientKey, Cert: f.ClientCert}, wantCert: true},
		{name: "all", in: TLS{Key: f.ClientKey, Cert: f.ClientCert, CA: f.CA, CAPath: hashDir, Ciphers: "ECDHE-ECDSA-AES128-GCM-SHA256"}, wantVerify: true, wantCert: true},
		{name: "ca with key half ignored", in: TLS{CA: f.CA, Cert: missing}, wantVerify: true},
		{name: "ca missing", in: TLS{CA: missing}, wantErr: "cacert", wantIs: fs.ErrNotExist},
		{name: "ca not PEM", in: TLS{CA: notPEM}, wantErr: "cacert"},
		{name: "ca is a key", in: TLS{CA: f.ClientKey}, wantErr: "cacert"},
		{name: "ca dir missing", in: TLS{CAPath: missing}, wantErr: "capath", wantIs: fs.ErrNotExist},
		{name: "ca dir without certificates", in: TLS{CAPath: emptyDir}, wantErr: "capath"},
		{name: "ca dir with a broken certificate", in: TLS{CAPath: badDir}, wantErr: "capath"},
		{name: "cert missing", in: TLS{Key: f.ClientKey, Cert: missing}, wantErr: "cert", wantIs: fs.ErrNotExist},
		{name: "cert not PEM", in: TLS{Key: f.ClientKey, Cert: notPEM}, wantErr: "cert"},
		{name: "key missing", in: TLS{Key: missing, Cert: f.ClientCert}, wantErr: "key", wantIs: fs.ErrNotExist},
		{name: "key is a certificate", in: TLS{Key: f.ClientCert, Cert: f.ClientCert}, wantErr: "key"},
		{name: "key of another cert", in: TLS{Key: f.OtherKey, Cert: f.ClientCert}, wantErr: "key"},
		{name: "bad cipher", in: TLS{CA: f.CA, Ciphers: "HIGH"}, wantErr: "ciphers", wantIs: ErrCipher},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.in.Enabled() == tt.wantOff {
				t.Errorf("Enabled() = %v", tt.in.Enabled())
			}
			cfg, err := tt.in.Config()
			if tt.wantErr != "" {
				var te *TLSError
				if !errors.As(err, &te) || te.Setting != tt.wantErr || !errors.Is(err, ErrTLS) {
					t.Fatalf("err = %v, want a TLSError on %s", err, tt.wantErr)
				}
				if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
					t.Errorf("err = %v, want errors.Is %v", err, tt.wantIs)
				}
				t.Logf("%v", err)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.wantOff {
				if cfg != nil {
					t.Fatalf("config %+v, want none", cfg)
				}
				return
			}
			if (cfg.VerifyConnection != nil) != tt.wantVerify {
				t.Errorf("verifies = %v, want %v", cfg.VerifyConnection != nil, tt.wantVerify)
			}
			if (len(cfg.Certificates) == 1) != tt.wantCert {
				t.Errorf("%d client certificates, want one: %v", len(cfg.Certificates), tt.wantCert)
			}
		})
	}
}

// TestTLSHandshake runs the built configurations against a TLS server
// whose certificate the test CA signed and that wants a client
// certificate of that CA when asked to.
func TestTLSHandshake(t *testing.T) {
	f := dbtest.WriteTLSFiles(t, t.TempDir())
	srvPair, err := tls.LoadX509KeyPair(f.ServerCert, f.ServerKey)
	if err != nil {
		t.Fatal(err)
	}
	caPEM, _ := os.ReadFile(f.CA)
	clientCAs := x509.NewCertPool()
	clientCAs.AppendCertsFromPEM(caPEM)
	tests := []struct {
		name       string
		in         TLS
		clientAuth bool
		wantVerify bool // the error is ErrTLSVerify with x509's reason
	}{
		{name: "right CA", in: TLS{CA: f.CA}},
		{name: "wrong CA", in: TLS{CA: f.OtherCA}, wantVerify: true},
		{name: "no CA: not verified", in: TLS{Key: f.OtherKey, Cert: f.OtherCert}},
		{name: "client certificate", in: TLS{CA: f.CA, Key: f.ClientKey, Cert: f.ClientCert}, clientAuth: true},
		{name: "cipher list", in: TLS{CA: f.CA, Ciphers: "ECDHE-ECDSA-AES256-GCM-SHA384"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := tt.in.Config()
			if err != nil {
				t.Fatal(err)
			}
			if tt.in.Ciphers != "" {
				cfg.MaxVersion = tls.VersionTLS12 // the list restricts TLS 1.2 only
			}
			srvCfg := &tls.Config{Certificates: []tls.Certificate{srvPair}}
			if tt.clientAuth {
				srvCfg.ClientAuth, srvCfg.ClientCAs = tls.RequireAndVerifyClientCert, clientCAs
			}
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			srvErr := make(chan error, 1)
			go func() {
				b, err := ln.Accept()
				if err != nil {
					srvErr <- err
					return
				}
				defer b.Close()
				_ = b.SetDeadline(time.Now().Add(10 * time.Second))
				s := tls.Server(b, srvCfg)
				err = s.Handshake()
				if err == nil && tt.in.Ciphers != "" && s.ConnectionState().CipherSuite != tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384 {
					err = errors.New("cipher list not applied")
				}
				srvErr <- err
			}()
			a, err := net.DialTimeout("tcp", ln.Addr().String(), 10*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			_ = a.SetDeadline(time.Now().Add(10 * time.Second))
			c := tls.Client(a, cfg)
			err = c.Handshake()
			if err == nil {
				_, _ = c.Read(make([]byte, 1)) // TLS 1.3: the server's verdict on the client certificate
			}
			c.Close()
			serr := <-srvErr
			if tt.wantVerify {
				var ua x509.UnknownAuthorityError
				if !errors.Is(err, ErrTLSVerify) || !errors.As(err, &ua) {
					t.Fatalf("err = %v, want ErrTLSVerify from an unknown authority", err)
				}
				t.Logf("%v", err)
				return
			}
			if err != nil || serr != nil {
				t.Fatalf("client %v, server %v", err, serr)
			}
		})
	}
}

func TestRegisterTLS(t *testing.T) {
	f := dbtest.WriteTLSFiles(t, t.TempDir())
	if name, err := RegisterTLS(TLS{Ciphers: "AES128-SHA"}); name != "" || err != nil {
		t.Errorf("without TLS: %q, %v; want \"\", nil", name, err)
	}
	name, err := RegisterTLS(TLS{CA: f.CA})
	if err != nil || !strings.HasPrefix(name, "pbx-agent-") {
		t.Fatalf("RegisterTLS = %q, %v", name, err)
	}
	mc, err := mysql.ParseDSN("u@tcp(127.0.0.1:3306)/d?tls=" + name)
	if err != nil || mc.TLS == nil || mc.TLS.VerifyConnection == nil {
		t.Fatalf("DSN with tls=%s: %v, %+v", name, err, mc)
	}
	if again, _ := RegisterTLS(TLS{CA: f.CA}); again != name {
		t.Errorf("same settings registered as %q then %q", name, again)
	}
	if _, err := RegisterTLS(TLS{CA: f.ClientKey}); !errors.Is(err, ErrTLS) {
		t.Errorf("bad CA: %v, want ErrTLS", err)
	}
}

func TestAnnotate(t *testing.T) {
	denied := &mysql.MySQLError{Number: 1045, Message: "Access denied"}
	tests := []struct {
		name    string
		in      error
		withTLS bool
		want    error // nil: returned unchanged
	}{
		{"insecure transport", &mysql.MySQLError{Number: 3159}, false, ErrTLSRequired},
		{"denied without TLS", denied, false, ErrDeniedWithoutTLS},
		{"denied with TLS", denied, true, nil},
		{"other error", &mysql.MySQLError{Number: 1049}, false, nil},
		{"bad conn", driver.ErrBadConn, false, nil},
		{"nil", nil, false, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := annotate(tt.in, tt.withTLS)
			if tt.want == nil {
				if got != tt.in {
					t.Fatalf("annotate = %v, want %v unchanged", got, tt.in)
				}
				return
			}
			var me *mysql.MySQLError
			if !errors.Is(got, tt.want) || !errors.As(got, &me) {
				t.Fatalf("annotate = %v, want %v wrapping the MySQL error", got, tt.want)
			}
		})
	}
}
