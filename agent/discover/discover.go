// Package discover reads a local Asterisk's configuration and derives the
// agent's settings from it: where manager.conf lives (asterisk.conf's
// astetcdir), the AMI address and a usable AMI user, the ARI URL and user
// (http.conf, ari.conf), the SIP ports Asterisk binds (pjsip.conf, sip.conf),
// the interface carrying them, and the RTP port range (rtp.conf).
//
// Discover only reads; Apply copies what was found into a config.Config for
// the keys the operator left unset (explicit configuration always wins) and
// logs each value once with the file and line it came from.
package discover

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/netip"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"

	"pbx-agent/agent/config"
	"pbx-agent/asteriskconf"
)

// Asterisk's compiled-in defaults (main/asterisk.c, res/res_rtp_asterisk.c,
// main/http.c, channels/chan_sip.c).
const (
	DefaultAsteriskConf = "/etc/asterisk/asterisk.conf"
	DefaultEtcDir       = "/etc/asterisk"
	DefaultRTPStart     = 5000
	DefaultRTPEnd       = 31000
	DefaultHTTPPort     = 8088
	DefaultSIPPort      = 5060
	DefaultSIPTLSPort   = 5061
)

// Options says where to look. The zero value reads the host's file system
// and network interfaces.
type Options struct {
	// FS is the root file system ("/"); default os.DirFS("/"). Tests and
	// scratch installs pass os.DirFS(root).
	FS fs.FS
	// AsteriskConf is asterisk.conf's absolute path (default DefaultAsteriskConf).
	AsteriskConf string
	// ManagerConf, when set, is the operator's manager.conf path: it is used
	// as is and its directory is taken as Asterisk's config directory.
	ManagerConf string
	// AMIUser, when set, is the operator's AMI user: only it is considered.
	AMIUser string
	// Interfaces lists the host's interfaces; default: net.Interfaces.
	Interfaces func() ([]Interface, error)
}

// Interface is one local network interface.
type Interface struct {
	Name     string
	Loopback bool
	Up       bool
	Addrs    []netip.Addr
	// Default is set on the interface of the IPv4 default route.
	Default bool
}

// Value is one discovered setting and where it came from.
type Value struct {
	Key    string `json:"key"`    // config key it feeds ("ami_host", "sipport", …) or a name ("rtp_range", "ari_url")
	Value  string `json:"value"`  // as it would be written in pbx-agent.conf; secrets are "(set)"
	Source string `json:"source"` // "/etc/asterisk/manager.conf:6", "default (no rtp.conf)"
}

// SIPBind is one SIP listener of Asterisk.
type SIPBind struct {
	Driver string     `json:"driver"` // "pjsip" or "sip"
	Proto  string     `json:"proto"`  // "udp", "tcp"
	Addr   netip.Addr `json:"addr"`
	Port   int        `json:"port"`
	Source string     `json:"source"`
}

// ARI is the Asterisk REST Interface endpoint and credentials.
type ARI struct {
	URL      string `json:"url"` // http://127.0.0.1:8088/ari
	User     string `json:"user"`
	Password string `json:"-"`
}

// Result is what discovery found. Fields are zero when not found.
type Result struct {
	EtcDir      string `json:"etc_dir"`
	ManagerConf string `json:"manager_conf"`
	// ManagerErr is why manager.conf could not be used (nil when it was).
	ManagerErr error `json:"-"`

	AMIHost   string `json:"ami_host,omitempty"`
	AMIPort   int    `json:"ami_port,omitempty"`
	AMIUser   string `json:"ami_user,omitempty"`
	AMISecret string `json:"-"`
	// AMIRead is the chosen (or configured) user's read classes.
	AMIRead asteriskconf.Class `json:"ami_read,omitempty"`
	// AMIUserErr says why no manager.conf user fits (a *asteriskconf.NoUserError).
	AMIUserErr error `json:"-"`

	SIP        []SIPBind          `json:"sip,omitempty"`
	SIPPorts   []config.PortRange `json:"sipport,omitempty"`
	RTPStart   int                `json:"rtp_start"`
	RTPEnd     int                `json:"rtp_end"`
	Interfaces []string           `json:"interface,omitempty"`
	ARI        *ARI               `json:"ari,omitempty"`

	// Values lists every finding in discovery order, with its source.
	Values []Value `json:"values"`
	// Notes are things skipped on purpose (TLS transports, hashed ARI passwords…).
	Notes []string `json:"notes,omitempty"`
}

// Discover reads Asterisk's configuration. It always returns a Result (with
// what could be found); the error joins every problem (errors.Is with
// ErrUnreadable, ErrNotFound, ErrConfig, ErrAMI, ErrInterface).
func Discover(opts Options) (*Result, error) {
	d := &discoverer{opts: opts, res: &Result{}}
	if d.opts.FS == nil {
		d.opts.FS = os.DirFS("/")
	}
	if d.opts.AsteriskConf == "" {
		d.opts.AsteriskConf = DefaultAsteriskConf
	}
	if d.opts.Interfaces == nil {
		d.opts.Interfaces = HostInterfaces
	}
	d.etcDir()
	d.manager()
	d.sip()
	d.rtp()
	d.ari()
	d.iface()
	return d.res, errors.Join(d.errs...)
}

type discoverer struct {
	opts    Options
	res     *Result
	errs    []error
	modules *asteriskconf.Config // nil when modules.conf is absent
}

// rel turns an absolute path into an fs.FS name.
func rel(p string) string { return strings.TrimPrefix(path.Clean("/"+p), "/") }

// abs turns an fs.FS name into an absolute path for messages.
func abs(name string) string { return "/" + strings.TrimPrefix(name, "/") }

func (d *discoverer) add(key, value, source string) {
	d.res.Values = append(d.res.Values, Value{Key: key, Value: value, Source: source})
}

func (d *discoverer) note(format string, args ...any) {
	d.res.Notes = append(d.res.Notes, fmt.Sprintf(format, args...))
}

// where renders a variable's position as "/etc/asterisk/x.conf:12".
func where(v asteriskconf.Var) string {
	if v.Line > 0 {
		return fmt.Sprintf("%s:%d", abs(v.File), v.Line)
	}
	return abs(v.File)
}

// lastVar returns the last variable named name in s.
func lastVar(s *asteriskconf.Section, name string) (asteriskconf.Var, bool) {
	if s == nil {
		return asteriskconf.Var{}, false
	}
	for i := len(s.Vars) - 1; i >= 0; i-- {
		if strings.EqualFold(s.Vars[i].Name, name) {
			return s.Vars[i], true
		}
	}
	return asteriskconf.Var{}, false
}

// load reads one Asterisk config file from the config directory. A missing
// file gives (nil, nil) unless required.
func (d *discoverer) load(file string, required bool) *asteriskconf.Config {
	name := rel(path.Join(d.res.EtcDir, file))
	if path.IsAbs(file) {
		name = rel(file)
	}
	cfg, err := asteriskconf.Load(d.opts.FS, name)
	switch {
	case err == nil:
		return cfg
	case errors.Is(err, fs.ErrNotExist):
		if required {
			d.errs = append(d.errs, fmt.Errorf("%w: %s", ErrNotFound, abs(name)))
		}
	case errors.Is(err, fs.ErrPermission):
		d.errs = append(d.errs, fmt.Errorf("%w: %s: %w", ErrUnreadable, abs(name), fs.ErrPermission))
	default:
		d.errs = append(d.errs, fmt.Errorf("%w: %s: %w", ErrConfig, abs(name), err))
	}
	return nil
}

// etcDir finds Asterisk's config directory: the operator's manager.conf
// directory, else asterisk.conf's [directories] astetcdir, else the default.
func (d *discoverer) etcDir() {
	if d.opts.ManagerConf != "" {
		d.res.EtcDir = path.Dir(abs(rel(d.opts.ManagerConf)))
		d.add("astetcdir", d.res.EtcDir, "directory of asterisk_manager_conf")
		return
	}
	d.res.EtcDir = DefaultEtcDir
	src := "default"
	cfg, err := asteriskconf.Load(d.opts.FS, rel(d.opts.AsteriskConf))
	switch {
	case err == nil:
		src = "default (" + d.opts.AsteriskConf + " sets no astetcdir)"
		if v, ok := lastVar(cfg.Section("directories"), "astetcdir"); ok && strings.TrimSpace(v.Value) != "" {
			d.res.EtcDir = path.Clean(strings.TrimSpace(v.Value))
			src = where(v)
		}
	case errors.Is(err, fs.ErrNotExist):
		src = "default (no " + d.opts.AsteriskConf + ")"
	default:
		d.note("%s not read (%v); assuming %s", d.opts.AsteriskConf, err, DefaultEtcDir)
		src = "default (" + d.opts.AsteriskConf + " not readable)"
	}
	d.add("astetcdir", d.res.EtcDir, src)
}

// moduleLoaded applies modules.conf: noload wins; otherwise autoload or an
// explicit load. Without modules.conf every module is assumed loaded.
func (d *discoverer) moduleLoaded(mods ...string) bool {
	if d.modules == nil {
		return true
	}
	s := d.modules.Section("modules")
	if s == nil {
		return true
	}
	auto := false
	if v, ok := s.Value("autoload"); ok {
		auto = truthy(v)
	}
	for _, m := range mods {
		for _, n := range s.Values("noload") {
			if strings.EqualFold(strings.TrimSpace(n), m) {
				return false
			}
		}
		if auto {
			continue
		}
		explicit := false
		for _, key := range []string{"load", "require", "preload", "preload-require"} {
			for _, n := range s.Values(key) {
				if strings.EqualFold(strings.TrimSpace(n), m) {
					explicit = true
				}
			}
		}
		if !explicit {
			return false
		}
	}
	return true
}

// truthy is Asterisk's ast_true.
func truthy(s string) bool {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "yes", "true", "y", "t", "1", "on":
		return true
	}
	return false
}

func parsePort(s string) (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || n < 1 || n > 65535 {
		return 0, fmt.Errorf("bad port %q", s)
	}
	return n, nil
}

// parseHostPort reads "addr", "addr:port", "[v6]" or "[v6]:port"; port is 0
// when absent.
func parseHostPort(s string) (netip.Addr, int, error) {
	s = strings.TrimSpace(s)
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap(), int(ap.Port()), nil
	}
	a, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(s, "["), "]"))
	if err != nil {
		return netip.Addr{}, 0, fmt.Errorf("not an address: %q", s)
	}
	return a.Unmap(), 0, nil
}

// sortedPorts merges ports into sorted single-port ranges, adjacent ones
// joined.
func sortedPorts(ports []int) []config.PortRange {
	slices.Sort(ports)
	ports = slices.Compact(ports)
	var out []config.PortRange
	for _, p := range ports {
		if n := len(out); n > 0 && int(out[n-1].Hi)+1 == p {
			out[n-1].Hi = uint16(p)
			continue
		}
		out = append(out, config.PortRange{Lo: uint16(p), Hi: uint16(p)})
	}
	return out
}

// FormatPorts renders ranges as sipport is written: "5060,5070-5080".
func FormatPorts(rs []config.PortRange) string {
	var b strings.Builder
	for i, r := range rs {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(int(r.Lo)))
		if r.Hi != r.Lo {
			b.WriteByte('-')
			b.WriteString(strconv.Itoa(int(r.Hi)))
		}
	}
	return b.String()
}

// Logger-free summary helpers.

// Lookup returns the value found for key.
func (r *Result) Lookup(key string) (Value, bool) {
	for _, v := range r.Values {
		if v.Key == key {
			return v, true
		}
	}
	return Value{}, false
}

// Log writes every value once at Info (notes at Info too).
func (r *Result) Log(logger *slog.Logger) {
	for _, v := range r.Values {
		logger.Info("discovered", "key", v.Key, "value", v.Value, "source", v.Source)
	}
	for _, n := range r.Notes {
		logger.Info("discovery note", "note", n)
	}
}
