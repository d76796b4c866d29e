package dbconn

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/go-sql-driver/mysql"
)

// TLS holds the MySQL connection's TLS settings: VoIPmonitor's mysqlsslkey,
// mysqlsslcert, mysqlsslcacert, mysqlsslcapath and mysqlsslciphers.
//
// As in VoIPmonitor (sql_db.cpp, SqlDb_mysql::connect), TLS is on when a
// client key and certificate are both given, or a CA file, or a CA
// directory; it is then required (SSL_MODE_REQUIRED): a server without TLS
// is refused, never used in clear. With a CA the server's certificate chain
// is verified against it (libmysqlclient's VERIFY_CA: the host name is not
// checked); without one the connection is encrypted but the server is not
// authenticated, as VoIPmonitor's SSL_MODE_REQUIRED. A key without a
// certificate (or the reverse) is ignored, and a cipher list alone does not
// turn TLS on, as there.
type TLS struct {
	Key     string // client private key, PEM
	Cert    string // client certificate, PEM
	CA      string // CA certificates, PEM (one file, may hold several)
	CAPath  string // directory of CA certificates: hash-named (c_rehash) or *.pem / *.crt
	Ciphers string // TLS 1.2 cipher suites in OpenSSL's spelling, ':'-separated
}

// Enabled reports whether the settings turn TLS on.
func (t TLS) Enabled() bool {
	return t.ClientCert() || t.CA != "" || t.CAPath != ""
}

// ClientCert reports whether a client certificate is sent.
func (t TLS) ClientCert() bool { return t.Key != "" && t.Cert != "" }

// TLSError is a TLS setting that cannot be used: a missing or unreadable
// file, a file that is not PEM, a key that does not match its certificate,
// an unknown cipher name. Setting names the field: "key", "cert", "cacert",
// "capath" or "ciphers" (the voipmonitor.conf key is "mysqlssl" + Setting).
type TLSError struct {
	Setting string
	Err     error
}

func (e *TLSError) Error() string {
	return fmt.Sprintf("%v: %s: %v", ErrTLS, e.Setting, e.Err)
}

func (e *TLSError) Unwrap() []error { return []error{ErrTLS, e.Err} }

// Config builds the crypto/tls configuration, reading every file it names;
// nil (and no error) when the settings do not turn TLS on.
func (t TLS) Config() (*tls.Config, error) {
	if !t.Enabled() {
		return nil, nil
	}
	cfg := &tls.Config{
		// Verification is VerifyConnection's (the chain only, as
		// VERIFY_CA), or none without a CA (SSL_MODE_REQUIRED).
		InsecureSkipVerify: true,
	}
	if t.Ciphers != "" {
		ids, err := ParseCiphers(t.Ciphers)
		if err != nil {
			return nil, &TLSError{"ciphers", err}
		}
		cfg.CipherSuites = ids
	}
	if t.ClientCert() {
		pair, err := keyPair(t.Cert, t.Key)
		if err != nil {
			return nil, err
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	if t.CA != "" || t.CAPath != "" {
		roots := x509.NewCertPool()
		if t.CA != "" {
			if err := addCAFile(roots, t.CA); err != nil {
				return nil, &TLSError{"cacert", err}
			}
		}
		if t.CAPath != "" {
			if err := addCADir(roots, t.CAPath); err != nil {
				return nil, &TLSError{"capath", err}
			}
		}
		cfg.VerifyConnection = verifyChain(roots)
	}
	return cfg, nil
}

// verifyChain checks the server's chain against roots, without the host
// name (mysqlhost may be an address or a node list).
func verifyChain(roots *x509.CertPool) func(tls.ConnectionState) error {
	return func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return fmt.Errorf("%w: the server sent no certificate", ErrTLSVerify)
		}
		opts := x509.VerifyOptions{Roots: roots, Intermediates: x509.NewCertPool()}
		for _, c := range cs.PeerCertificates[1:] {
			opts.Intermediates.AddCert(c)
		}
		if _, err := cs.PeerCertificates[0].Verify(opts); err != nil {
			return fmt.Errorf("%w: %w", ErrTLSVerify, err)
		}
		return nil
	}
}

// keyPair loads the client certificate and key, naming the file at fault.
func keyPair(certFile, keyFile string) (tls.Certificate, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return tls.Certificate{}, &TLSError{"cert", err}
	}
	if !hasPEM(certPEM, func(typ string) bool { return typ == "CERTIFICATE" }) {
		return tls.Certificate{}, &TLSError{"cert", fmt.Errorf("%s: no PEM CERTIFICATE block", certFile)}
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return tls.Certificate{}, &TLSError{"key", err}
	}
	if !hasPEM(keyPEM, func(typ string) bool { return strings.HasSuffix(typ, "PRIVATE KEY") }) {
		return tls.Certificate{}, &TLSError{"key", fmt.Errorf("%s: no PEM PRIVATE KEY block", keyFile)}
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, &TLSError{"key", fmt.Errorf("%s with certificate %s: %w", keyFile, certFile, err)}
	}
	return pair, nil
}

func hasPEM(b []byte, want func(string) bool) bool {
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			return false
		}
		if want(blk.Type) {
			return true
		}
	}
}

// addCAFile adds every certificate of a PEM file; a file without one is an
// error.
func addCAFile(pool *x509.CertPool, file string) error {
	n, err := addPEMCerts(pool, file)
	if err == nil && n == 0 {
		err = fmt.Errorf("%s: no PEM CERTIFICATE block", file)
	}
	return err
}

// addPEMCerts adds the certificates of a PEM file and returns how many.
func addPEMCerts(pool *x509.CertPool, file string) (int, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return 0, err
	}
	n := 0
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			return n, nil
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return n, fmt.Errorf("%s: certificate %d: %w", file, n+1, err)
		}
		pool.AddCert(c)
		n++
	}
}

// hashName is OpenSSL's c_rehash naming: 8 hex digits of the subject hash,
// a dot and a sequence number.
var hashName = regexp.MustCompile(`^[0-9a-f]{8}\.[0-9]+$`)

// addCADir adds the certificates of a CA directory: its hash-named files
// (what OpenSSL's CApath looks up) and its *.pem and *.crt files. Files
// holding no certificate (a key beside them) are skipped; one that cannot
// be read or holds a broken certificate is an error, and so is a
// directory without any certificate.
func addCADir(pool *x509.CertPool, dir string) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	n := 0
	for _, e := range ents {
		name := e.Name()
		ext := strings.ToLower(filepath.Ext(name))
		if !hashName.MatchString(name) && ext != ".pem" && ext != ".crt" {
			continue
		}
		p := filepath.Join(dir, name)
		st, err := os.Stat(p)
		if err != nil {
			return err
		}
		if st.IsDir() {
			continue
		}
		k, err := addPEMCerts(pool, p)
		if err != nil {
			return err
		}
		n += k
	}
	if n == 0 {
		return fmt.Errorf("%s: no certificate (in hash-named, *.pem or *.crt files)", dir)
	}
	return nil
}

// opensslSuites maps OpenSSL's names of the TLS 1.2 (and older) suites Go
// implements to the IANA names crypto/tls uses.
var opensslSuites = map[string]string{
	"ECDHE-ECDSA-AES128-GCM-SHA256": "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
	"ECDHE-RSA-AES128-GCM-SHA256":   "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
	"ECDHE-ECDSA-AES256-GCM-SHA384": "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
	"ECDHE-RSA-AES256-GCM-SHA384":   "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
	"ECDHE-ECDSA-CHACHA20-POLY1305": "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
	"ECDHE-RSA-CHACHA20-POLY1305":   "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
	"ECDHE-ECDSA-AES128-SHA":        "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
	"ECDHE-ECDSA-AES256-SHA":        "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
	"ECDHE-RSA-AES128-SHA":          "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
	"ECDHE-RSA-AES256-SHA":          "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
	"ECDHE-ECDSA-AES128-SHA256":     "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256",
	"ECDHE-RSA-AES128-SHA256":       "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256",
	"ECDHE-RSA-DES-CBC3-SHA":        "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA",
	"ECDHE-ECDSA-RC4-SHA":           "TLS_ECDHE_ECDSA_WITH_RC4_128_SHA",
	"ECDHE-RSA-RC4-SHA":             "TLS_ECDHE_RSA_WITH_RC4_128_SHA",
	"AES128-GCM-SHA256":             "TLS_RSA_WITH_AES_128_GCM_SHA256",
	"AES256-GCM-SHA384":             "TLS_RSA_WITH_AES_256_GCM_SHA384",
	"AES128-SHA":                    "TLS_RSA_WITH_AES_128_CBC_SHA",
	"AES256-SHA":                    "TLS_RSA_WITH_AES_256_CBC_SHA",
	"AES128-SHA256":                 "TLS_RSA_WITH_AES_128_CBC_SHA256",
	"DES-CBC3-SHA":                  "TLS_RSA_WITH_3DES_EDE_CBC_SHA",
	"RC4-SHA":                       "TLS_RSA_WITH_RC4_128_SHA",
}

// ParseCiphers maps a cipher list in OpenSSL's spelling (names separated
// by ':', ',' or spaces; IANA names are accepted too) to crypto/tls suite
// IDs, in the given order. It refuses a name Go does not implement, an
// OpenSSL keyword or operator (HIGH, !aNULL, …: not expanded here), and a
// TLS 1.3 suite (Go does not let them be chosen: TLS 1.3 always offers its
// own three). The list restricts TLS 1.2 only.
func ParseCiphers(list string) ([]uint16, error) {
	byName := map[string]*tls.CipherSuite{}
	for _, s := range append(tls.CipherSuites(), tls.InsecureCipherSuites()...) {
		byName[s.Name] = s
	}
	var ids []uint16
	for _, name := range strings.FieldsFunc(list, func(r rune) bool { return r == ':' || r == ',' || r == ' ' || r == '\t' }) {
		iana := strings.ToUpper(name)
		if n, ok := opensslSuites[iana]; ok {
			iana = n
		}
		s, ok := byName[iana]
		switch {
		case !ok:
			return nil, fmt.Errorf("%w: %q", ErrCipher, name)
		case !below13(s):
			return nil, fmt.Errorf("%w: %q is a TLS 1.3 suite: Go always offers TLS 1.3's suites and cannot restrict them", ErrCipher, name)
		}
		ids = append(ids, s.ID)
	}
	if len(ids) == 0 {
		return nil, fmt.Errorf("%w: empty list %q", ErrCipher, list)
	}
	return ids, nil
}

func below13(s *tls.CipherSuite) bool {
	for _, v := range s.SupportedVersions {
		if v < tls.VersionTLS13 {
			return true
		}
	}
	return false
}

// RegisterTLS builds the TLS configuration of t and registers it with the
// MySQL driver under a name derived from the settings, for a DSN's tls=
// parameter (mysql.Config.TLSConfig). It returns "" when t does not turn
// TLS on. Registering the same settings again replaces the configuration
// with the files' current contents.
func RegisterTLS(t TLS) (string, error) {
	cfg, err := t.Config()
	if err != nil || cfg == nil {
		return "", err
	}
	h := sha256.Sum256([]byte(strings.Join([]string{t.Key, t.Cert, t.CA, t.CAPath, t.Ciphers}, "\x00")))
	name := "pbx-agent-" + hex.EncodeToString(h[:8])
	if err := mysql.RegisterTLSConfig(name, cfg); err != nil {
		return "", fmt.Errorf("%w: %w", ErrTLS, err)
	}
	return name, nil
}

// MySQL errors of a refused login: ER_ACCESS_DENIED_ERROR, and
// ER_SECURE_TRANSPORT_REQUIRED ("Connections using insecure transport are
// prohibited while --require_secure_transport=ON", MySQL's answer; MariaDB
// answers 1045, as for REQUIRE SSL).
const (
	errAccessDenied      = 1045
	errInsecureTransport = 3159
	errUnknownTimeZone   = 1298 // ER_UNKNOWN_TIME_ZONE
)

// annotate marks a connection error that means, or may mean, that the
// server wants the TLS the agent did not offer (withTLS false), or that it
// refuses the session time_zone (mysql_timezone).
func annotate(err error, withTLS bool) error {
	var me *mysql.MySQLError
	switch {
	case !errors.As(err, &me):
	case me.Number == errInsecureTransport:
		return fmt.Errorf("%w: %w", ErrTLSRequired, err)
	case me.Number == errAccessDenied && !withTLS:
		return fmt.Errorf("%w: %w", ErrDeniedWithoutTLS, err)
	case me.Number == errUnknownTimeZone:
		return fmt.Errorf("%w: %w", ErrTimeZone, err)
	}
	return err
}
