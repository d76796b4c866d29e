// Package debpkg tests the Debian package built by build-deb.sh (`make deb`):
// its control data and file list (dpkg-deb --info/--contents), and an
// install into a scratch root where `pbx-agent doctor` runs against the
// fixture Asterisk configs, a fake AMI and (when started) the test MariaDB.
package debpkg

import (
	"bytes"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/go-sql-driver/mysql"

	"pbx-agent/ami/amitest"
	"pbx-agent/internal/testkit"
	"pbx-agent/sniffer/fixture"
)

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr.String())
	}
	return string(out)
}

// buildDeb runs build-deb.sh once per test binary.
func buildDeb(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: building the package takes a while")
	}
	for _, tool := range []string{"dpkg-deb", "bash"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed: cannot build or inspect the .deb", tool)
		}
	}
	out := t.TempDir()
	cmd := exec.Command("bash", fixture.Repo(t, "scripts", "package", "build-deb.sh"), out)
	cmd.Env = append(os.Environ(), "VERSION=0.0.0~test")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	b, err := cmd.Output()
	if err != nil {
		t.Fatalf("build-deb.sh: %v\n%s", err, stderr.String())
	}
	deb := strings.TrimSpace(string(b))
	if _, err := os.Stat(deb); err != nil {
		t.Fatalf("build-deb.sh printed %q: %v", deb, err)
	}
	return deb
}

func TestDeb(t *testing.T) {
	deb := buildDeb(t)

	t.Run("info", func(t *testing.T) {
		info := run(t, "dpkg-deb", "--info", deb)
		for _, want := range []string{"Package: pbx-agent", "Version: 0.0.0~test", "Depends: ", "conffiles", "md5sums", "postinst", "postrm", "prerm"} {
			if !strings.Contains(info, want) {
				t.Errorf("dpkg-deb --info lacks %q:\n%s", want, info)
			}
		}
		ctrl := t.TempDir()
		run(t, "dpkg-deb", "--control", deb, ctrl)
		conff, err := os.ReadFile(filepath.Join(ctrl, "conffiles"))
		if err != nil || strings.TrimSpace(string(conff)) != "/etc/pbx-agent/pbx-agent.conf" {
			t.Errorf("conffiles = %q, %v", conff, err)
		}
		for _, s := range []string{"postinst", "prerm", "postrm"} {
			st, err := os.Stat(filepath.Join(ctrl, s))
			if err != nil || st.Mode().Perm()&0o111 == 0 {
				t.Errorf("%s missing or not executable: %v", s, err)
				continue
			}
			run(t, "sh", "-n", filepath.Join(ctrl, s))
		}
		post, _ := os.ReadFile(filepath.Join(ctrl, "postinst"))
		for _, want := range []string{"useradd --system", "--groups asterisk", "install -d -o \"$USER\""} {
			if !strings.Contains(string(post), want) {
				t.Errorf("postinst lacks %q", want)
			}
		}
		postrm, _ := os.ReadFile(filepath.Join(ctrl, "postrm"))
		if !strings.Contains(string(postrm), "purge)") || strings.Contains(strings.SplitN(string(postrm), "purge)", 2)[0], "rm -rf") {
			t.Errorf("postrm must delete data only on purge:\n%s", postrm)
		}
	})

	t.Run("contents", func(t *testing.T) {
		list := run(t, "dpkg-deb", "--contents", deb)
		for _, want := range []struct{ mode, path string }{
			{"-rwxr-xr-x root/root", "./usr/bin/pbx-agent"},
			{"-rw-r----- root/root", "./etc/pbx-agent/pbx-agent.conf"},
			{"-rw-r--r-- root/root", "./usr/lib/systemd/system/pbx-agent.service"},
			{"-rw-r--r-- root/root", "./usr/share/doc/pbx-agent/README.md"},
		} {
			found := false
			for _, line := range strings.Split(list, "\n") {
				if strings.HasPrefix(line, want.mode) && strings.HasSuffix(line, " "+want.path) {
					found = true
				}
			}
			if !found {
				t.Errorf("dpkg-deb --contents lacks %s %s:\n%s", want.mode, want.path, list)
			}
		}
	})

	root := t.TempDir()
	run(t, "dpkg-deb", "--extract", deb, root)
	bin := filepath.Join(root, "usr", "bin", "pbx-agent")

	t.Run("unit", func(t *testing.T) {
		unit, err := os.ReadFile(filepath.Join(root, "usr/lib/systemd/system/pbx-agent.service"))
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"Type=notify", "User=pbx-agent", "AmbientCapabilities=CAP_NET_RAW CAP_NET_ADMIN",
			"ExecReload=/bin/kill -HUP $MAINPID", "Restart=on-failure", "StateDirectory=pbx-agent"} {
			if !strings.Contains(string(unit), want) {
				t.Errorf("unit lacks %q", want)
			}
		}
		if v := run(t, bin, "version"); !strings.Contains(v, "0.0.0~test") {
			t.Errorf("version = %q", v)
		}
	})

	// Issue 19: the packaged binary is the dynamic cgo build with every
	// codec, and its Depends (dpkg-shlibdeps, and libavcodec's package for
	// the library it opens on first use) name the packages of the
	// libraries it loads.
	t.Run("codecs and Depends", func(t *testing.T) {
		v := run(t, bin, "version")
		decodes, silent := versionLine(v, "decodes: "), versionLine(v, "silent: ")
		for _, c := range []string{"iLBC", "G723", "G722", "opus", "G729", "GSM", "speex", "G726-32"} {
			if !strings.Contains(" "+decodes+" ", " "+c+" ") {
				t.Errorf("packaged binary does not decode %s:\n%s", c, v)
			}
		}
		if silent != "" {
			t.Errorf("packaged binary plays %s as silence", silent)
		}
		deps := dependsPackages(t, run(t, "dpkg-deb", "--field", deb, "Depends"))
		t.Logf("Depends: %s", strings.TrimSpace(run(t, "dpkg-deb", "--field", deb, "Depends")))
		// The soname's major version is in the name of most of them
		// (libavcodec59 on Debian 12): match the stem.
		for _, stem := range []string{"passwd", "libavcodec", "libavutil", "libspandsp", "libgsm1", "libopus0", "libbcg729-0", "libspeex1", "libtiff", "libc6"} {
			found := false
			for p := range deps {
				found = found || p == stem || strings.HasPrefix(p, stem) && strings.Trim(p[len(stem):], "0123456789") == ""
			}
			if !found {
				t.Errorf("Depends names no %s package: %v", stem, deps)
			}
		}
		if _, err := exec.LookPath("objdump"); err != nil {
			t.Skip("objdump not installed (binutils)")
		}
		var needed []string
		for _, line := range strings.Split(run(t, "objdump", "-p", bin), "\n") {
			if f := strings.Fields(line); len(f) == 2 && f[0] == "NEEDED" {
				needed = append(needed, f[1])
			}
		}
		if len(needed) < 7 {
			t.Fatalf("packaged binary needs %v: not the dynamic cgo build", needed)
		}
		// libavcodec is opened on first use, not at every start (its
		// ninety libraries doubled the start-up time).
		for _, lib := range needed {
			if strings.HasPrefix(lib, "libavcodec") || strings.HasPrefix(lib, "libavutil") {
				t.Errorf("packaged binary links %s at start", lib)
			}
		}
		for _, lib := range needed {
			var owners []string
			for _, line := range strings.Split(run(t, "dpkg", "-S", "*/"+lib), "\n") {
				if pkg, _, ok := strings.Cut(line, ":"); ok {
					owners = append(owners, pkg)
				}
			}
			ok := false
			for _, o := range owners {
				ok = ok || deps[o]
			}
			if !ok {
				t.Errorf("NEEDED %s comes from %v, none of them in Depends %v", lib, owners, deps)
			}
		}
	})

	t.Run("doctor in scratch root", func(t *testing.T) {
		doctorScratch(t, root, bin)
	})

	// Issue 18 item 10: Debian's files are there, and lintian is clean but
	// for the overrides the package carries with their reasons.
	t.Run("debian files", func(t *testing.T) {
		for _, f := range []string{"usr/share/doc/pbx-agent/copyright", "usr/share/doc/pbx-agent/changelog.gz",
			"usr/share/man/man8/pbx-agent.8.gz", "usr/share/lintian/overrides/pbx-agent", "usr/share/doc/pbx-agent/CLI.md"} {
			if _, err := os.Stat(filepath.Join(root, f)); err != nil {
				t.Errorf("%s: %v", f, err)
			}
		}
		man := run(t, "sh", "-c", "zcat "+filepath.Join(root, "usr/share/man/man8/pbx-agent.8.gz"))
		for _, want := range []string{".TH PBX-AGENT 8", ".SH CHECK\\-CONFIG", "config file to check"} {
			if !strings.Contains(man, want) {
				t.Errorf("man page lacks %q", want)
			}
		}
		cr, _ := os.ReadFile(filepath.Join(root, "usr/share/doc/pbx-agent/copyright"))
		if !strings.Contains(string(cr), "Files: go/github.com/google/gopacket/*") || !strings.Contains(string(cr), "linked dynamically") {
			t.Errorf("copyright does not list the linked modules:\n%.400s", cr)
		}
		unit, _ := os.ReadFile(filepath.Join(root, "usr/lib/systemd/system/pbx-agent.service"))
		for _, want := range []string{"SystemCallFilter=@system-service", "SystemCallArchitectures=native", "ProtectKernelLogs=yes",
			"ProtectHostname=yes", "ProtectProc=invisible", "RestrictSUIDSGID=yes", "MemoryDenyWriteExecute=yes", "UMask=0027"} {
			if !strings.Contains(string(unit), want) {
				t.Errorf("unit lacks %q", want)
			}
		}
	})
	t.Run("lintian", func(t *testing.T) {
		if _, err := exec.LookPath("lintian"); err != nil {
			t.Skip("lintian not installed (scripts/deps.sh installs it)")
		}
		cmd := exec.Command("lintian", "--info", "--pedantic", deb)
		out, err := cmd.CombinedOutput()
		var tags []string
		for _, line := range strings.Split(string(out), "\n") {
			if len(line) > 2 && line[1] == ':' && strings.ContainsRune("EWIPX", rune(line[0])) {
				tags = append(tags, line)
			}
		}
		if err != nil || len(tags) > 0 {
			t.Errorf("lintian: %v\n%s", err, strings.Join(tags, "\n"))
		}
	})
}

// versionLine returns the rest of the line of `pbx-agent version` output
// that starts with prefix.
func versionLine(out, prefix string) string {
	for _, line := range strings.Split(out, "\n") {
		if rest, ok := strings.CutPrefix(line, prefix); ok {
			return strings.TrimSpace(rest)
		}
	}
	return ""
}

// dependsPackages returns the package names of a Depends field (versions
// and alternatives' separators dropped).
func dependsPackages(t *testing.T, field string) map[string]bool {
	t.Helper()
	pkgs := map[string]bool{}
	for _, rel := range strings.FieldsFunc(field, func(r rune) bool { return r == ',' || r == '|' }) {
		if name := strings.Fields(rel); len(name) > 0 {
			pkgs[name[0]] = true
		}
	}
	if len(pkgs) == 0 {
		t.Fatalf("empty Depends %q", field)
	}
	return pkgs
}

// doctorScratch puts the fixture's /etc/asterisk into root (AMI port moved to
// a fake AMI), points the packaged config at scratch paths and runs doctor.
func doctorScratch(t *testing.T, root, bin string) {
	srv := &amitest.Server{Users: map[string]string{"monitor": "monpass"}}
	srv.Answers = amitest.NewAnswers()
	srv.Answers.AddFile(t, "CoreShowChannels", "", "", fixture.Repo(t, "testdata", "ami", "ami-coreshowchannels-empty.raw"))
	srv.Start(t)
	_, amiPort, _ := net.SplitHostPort(srv.Addr())

	src := fixture.Repo(t, "testdata", "discover", "fixture", "etc", "asterisk")
	etc := filepath.Join(root, "etc", "asterisk")
	if err := os.MkdirAll(etc, 0o755); err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(src)
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if e.Name() == "manager.conf" {
			b = bytes.Replace(b, []byte("port = 5038"), []byte("port = "+amiPort), 1)
		}
		if err := os.WriteFile(filepath.Join(etc, e.Name()), b, 0o640); err != nil {
			t.Fatal(err)
		}
	}
	state := filepath.Join(root, "var", "lib", "pbx-agent")
	for _, d := range []string{"spool", "cdrqueue"} {
		if err := os.MkdirAll(filepath.Join(state, d), 0o750); err != nil {
			t.Fatal(err)
		}
	}
	conf := filepath.Join(root, "etc", "pbx-agent", "pbx-agent.conf")
	extra := []string{
		"spooldir = " + filepath.Join(state, "spool"),
		"cdr_queue_dir = " + filepath.Join(state, "cdrqueue"),
		"managerport = " + strconv.Itoa(testkit.FreePort(t)),
		"http_bind = 127.0.0.1:" + strconv.Itoa(testkit.FreePort(t)),
	}
	wantMySQL := "skip"
	if dsn := os.Getenv("PBX_TEST_MYSQL_DSN"); dsn != "" {
		extra = append(extra, scratchMySQL(t, dsn)...)
		wantMySQL = "ok"
	}
	f, err := os.OpenFile(conf, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("\n; scratch-root test overrides\n" + strings.Join(extra, "\n") + "\n")
	f.Close()

	cmd := exec.Command(bin, "doctor", "-json", "-config", conf, "-root", root, "-timeout", "2s")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, runErr := cmd.Output()
	var rep struct {
		Findings   []struct{ Check, Status, Message, Hint string }
		Fails      int
		Discovered struct {
			Values []struct{ Key, Value, Source string }
		}
	}
	if err := json.Unmarshal(out, &rep); err != nil {
		t.Fatalf("doctor -json output: %v (%v)\n%s\n%s", err, runErr, out, stderr.String())
	}
	t.Logf("doctor: exit %v, %d findings, %d failed", runErr, len(rep.Findings), rep.Fails)

	status := map[string]string{}
	for _, f := range rep.Findings {
		if _, seen := status[f.Check]; !seen || f.Status == "fail" {
			status[f.Check] = f.Status
		}
		if f.Status == "fail" {
			t.Logf("fail %s: %s (fix: %s)", f.Check, f.Message, f.Hint)
		}
	}
	for _, c := range []string{"config", "manager.conf", "ami-user", "sipport", "rtp-range", "ami", "ami-login", "ami-classes", "ami-actions",
		"ari", "interface", "capture-permission", "spool", "cdr-queue", "mysql", "manager-api", "manager-aes", "http", "clock"} {
		if _, ok := status[c]; !ok {
			t.Errorf("check %q not printed", c)
		}
	}
	for c, want := range map[string]string{"config": "ok", "manager.conf": "ok", "ami-user": "ok", "ami": "ok", "ami-login": "ok", "ami-classes": "ok",
		"spool": "ok", "cdr-queue": "ok", "mysql": wantMySQL, "manager-api": "ok", "http": "ok"} {
		if status[c] != want {
			t.Errorf("check %s = %s, want %s", c, status[c], want)
		}
	}
	got := map[string]string{}
	for _, v := range rep.Discovered.Values {
		got[v.Key] = v.Value
	}
	for k, want := range map[string]string{"ami_host": "127.0.0.1", "ami_port": amiPort, "ami_user": "monitor", "sipport": "5060,5070",
		"rtp_range": "10000-10200", "interface": "lo", "ari_url": "http://127.0.0.1:8088/ari"} {
		if got[k] != want {
			t.Errorf("discovered %s = %q, want %q", k, got[k], want)
		}
	}
	allowed := map[string]bool{"capture-permission": os.Geteuid() != 0, "bpf": os.Geteuid() != 0}
	for c, st := range status {
		if st == "fail" && !allowed[c] {
			t.Errorf("unexpected failure of %s", c)
		}
	}
	if (runErr == nil) != (rep.Fails == 0) {
		t.Errorf("exit status %v does not match %d failures", runErr, rep.Fails)
	}
}

// scratchMySQL creates a database on the test MariaDB and returns config lines for it.
func scratchMySQL(t *testing.T, dsn string) []string {
	t.Helper()
	mc, err := mysql.ParseDSN(dsn)
	if err != nil {
		t.Fatal(err)
	}
	var rb [4]byte
	_, _ = rand.Read(rb[:])
	name := "pbx_deb_" + hex.EncodeToString(rb[:])
	mc.DBName = ""
	admin, err := sql.Open("mysql", mc.FormatDSN())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Exec("CREATE DATABASE `" + name + "`"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = admin.Exec("DROP DATABASE IF EXISTS `" + name + "`")
		admin.Close()
	})
	host, port, _ := strings.Cut(mc.Addr, ":")
	return []string{"mysqlhost = " + host, "mysqlport = " + port, "mysqldb = " + name,
		"mysqlusername = " + mc.User, "mysqlpassword = " + mc.Passwd}
}
