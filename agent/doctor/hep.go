package doctor

import (
	"errors"
	"io/fs"
	"net"
	"net/netip"
	"path"
	"strconv"
	"strings"

	"pbx-agent/agent/config"
	"pbx-agent/agent/discover"
	"pbx-agent/asteriskconf"
)

// checkHEP checks, when HEP input is on, that Asterisk's hep.conf sends
// to the agent: enabled, capture_address on hep_bind_ip:hep_bind_port, and
// capture_password equal to hep_password. It says what to put there.
func checkHEP(r *Report, env *Env, cfg *config.Config, res *discover.Result) {
	if !cfg.HEP {
		return
	}
	etc := discover.DefaultEtcDir
	if res != nil && res.EtcDir != "" {
		etc = res.EtcDir
	}
	file := path.Join(etc, "hep.conf")
	bind := cfg.HEPBindIP
	if a, err := netip.ParseAddr(bind); err == nil && a.IsUnspecified() {
		bind = "127.0.0.1" // Asterisk beside the agent reaches it on loopback
	}
	want := net.JoinHostPort(bind, strconv.Itoa(cfg.HEPBindPort))
	fix := "put in " + file + " `[general]`, `enabled = yes`, `capture_address = " + want + "`"
	if cfg.HEPPassword != "" {
		fix += ", `capture_password = " + cfg.HEPPassword + "`"
	}
	fix += ", `uuid_type = call-id`, then `asterisk -rx 'module load res_hep.so'` and load res_hep_pjsip.so and res_hep_rtcp.so (or restart Asterisk)"
	ac, err := asteriskconf.Load(env.FS, strings.TrimPrefix(file, "/"))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		r.add("hep.conf", StatusFail, fix, "hep = yes but %s does not exist: Asterisk sends no HEP", file)
		return
	case err != nil:
		r.add("hep.conf", StatusFail, fix, "%s not read: %v", file, err)
		return
	}
	g := ac.Section("general")
	get := func(k string) string {
		if g == nil {
			return ""
		}
		v, _ := g.Value(k)
		return strings.TrimSpace(v)
	}
	var problems []string
	if en := strings.ToLower(get("enabled")); en != "" && en != "yes" && en != "true" && en != "1" && en != "on" {
		problems = append(problems, "enabled = "+en)
	}
	if got := get("capture_address"); !sameHEPAddr(got, cfg) {
		problems = append(problems, "capture_address = "+orNone(got)+", want "+want)
	}
	if cfg.HEPPassword != "" && get("capture_password") != cfg.HEPPassword {
		problems = append(problems, "capture_password differs from hep_password")
	}
	if len(problems) > 0 {
		r.add("hep.conf", StatusFail, fix, "%s does not send HEP to the agent: %s", file, strings.Join(problems, "; "))
		return
	}
	r.add("hep.conf", StatusOK, "", "%s sends HEP to %s (capture_id %s)", file, get("capture_address"), orNone(get("capture_id")))
}

// sameHEPAddr tells whether Asterisk's capture_address reaches the agent's
// HEP listener.
func sameHEPAddr(addr string, cfg *config.Config) bool {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || port != strconv.Itoa(cfg.HEPBindPort) {
		return false
	}
	bind, err := netip.ParseAddr(cfg.HEPBindIP)
	if err != nil {
		return host == cfg.HEPBindIP
	}
	if bind.IsUnspecified() {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap() == bind.Unmap()
}
