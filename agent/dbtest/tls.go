package dbtest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"pbx-agent/sniffer/fixture"
)

// TLSFiles are the PEM files of a throw-away PKI made for one test.
type TLSFiles struct {
	Dir        string
	CA         string // the CA that signed the server and client certificates
	ServerCert string // for 127.0.0.1 and localhost
	ServerKey  string
	ClientCert string
	ClientKey  string
	OtherCA    string // a CA that signed nothing here
	OtherCert  string // a client certificate of OtherCA
	OtherKey   string
}

// WriteTLSFiles generates a CA, a server and a client key pair signed by
// it, and an unrelated CA with a client pair, as PEM files in dir
// (ca.pem, server-cert.pem, server-key.pem: what scripts/mariadb-up.sh's
// PBX_MARIADB_TLS reads).
func WriteTLSFiles(tb testing.TB, dir string) TLSFiles {
	tb.Helper()
	f := TLSFiles{Dir: dir}
	ca, caKey := newCert(tb, "pbx-agent test CA", nil, nil, true, nil)
	srv, srvKey := newCert(tb, "pbx-agent test server", ca, caKey, false, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth})
	cli, cliKey := newCert(tb, "pbx-agent test client", ca, caKey, false, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth})
	other, otherKey := newCert(tb, "pbx-agent other CA", nil, nil, true, nil)
	oc, ocKey := newCert(tb, "pbx-agent other client", other, otherKey, false, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth})
	f.CA = writeCert(tb, dir, "ca.pem", ca)
	f.ServerCert = writeCert(tb, dir, "server-cert.pem", srv)
	f.ServerKey = writeKey(tb, dir, "server-key.pem", srvKey)
	f.ClientCert = writeCert(tb, dir, "client-cert.pem", cli)
	f.ClientKey = writeKey(tb, dir, "client-key.pem", cliKey)
	f.OtherCA = writeCert(tb, dir, "other-ca.pem", other)
	f.OtherCert = writeCert(tb, dir, "other-cert.pem", oc)
	f.OtherKey = writeKey(tb, dir, "other-key.pem", ocKey)
	return f
}

func newCert(tb testing.TB, cn string, parent *x509.Certificate, parentKey *ecdsa.PrivateKey, isCA bool, eku []x509.ExtKeyUsage) (*x509.Certificate, *ecdsa.PrivateKey) {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	sn, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: sn,
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  eku,
	}
	if isCA {
		tmpl.IsCA, tmpl.BasicConstraintsValid = true, true
		tmpl.KeyUsage |= x509.KeyUsageCertSign
	} else {
		tmpl.DNSNames = []string{"localhost"}
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		tb.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatal(err)
	}
	return c, key
}

func writeCert(tb testing.TB, dir, name string, c *x509.Certificate) string {
	tb.Helper()
	return writePEM(tb, dir, name, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}

func writeKey(tb testing.TB, dir, name string, k *ecdsa.PrivateKey) string {
	tb.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		tb.Fatal(err)
	}
	return writePEM(tb, dir, name, &pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

func writePEM(tb testing.TB, dir, name string, b *pem.Block) string {
	tb.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, pem.EncodeToMemory(b), 0o600); err != nil {
		tb.Fatal(err)
	}
	return p
}

// TLSServer is a MariaDB of one test's own that requires TLS on TCP.
type TLSServer struct {
	Host  string // 127.0.0.1
	Port  string
	Files TLSFiles
}

// StartTLSMariaDB starts a private MariaDB with scripts/mariadb-up.sh and
// PBX_MARIADB_TLS (certificates from WriteTLSFiles, TLS required on TCP);
// it is stopped when the test ends. It skips as DSN does, and when
// mariadbd is not installed.
func StartTLSMariaDB(tb testing.TB) *TLSServer {
	tb.Helper()
	DSN(tb)
	if _, err := exec.LookPath("mariadbd"); err != nil {
		if _, err := os.Stat("/usr/sbin/mariadbd"); err != nil {
			tb.Skip("mariadbd not installed (apt-get install -y mariadb-server)")
		}
	}
	repo := fixture.RepoRoot(tb)
	dir := tb.TempDir()
	s := &TLSServer{Host: "127.0.0.1", Files: WriteTLSFiles(tb, tb.TempDir())}
	cmd := exec.Command("bash", filepath.Join(repo, "scripts", "mariadb-up.sh"), dir)
	cmd.Env = append(os.Environ(), "PBX_MARIADB_TLS="+s.Files.Dir)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	tb.Cleanup(func() {
		if out, err := exec.Command("bash", filepath.Join(repo, "scripts", "mariadb-down.sh"), dir).CombinedOutput(); err != nil {
			tb.Errorf("mariadb-down.sh: %v\n%s", err, out)
		}
	})
	if err != nil {
		tb.Fatalf("mariadb-up.sh: %v\n%s", err, stderr.String())
	}
	for _, line := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(line, "export PBX_TEST_MYSQL_PORT='"); ok {
			s.Port = strings.TrimSuffix(v, "'")
		}
	}
	if s.Port == "" {
		tb.Fatalf("mariadb-up.sh printed no port:\n%s", out)
	}
	return s
}
