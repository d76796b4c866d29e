package discover

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"path"
	"strconv"
	"strings"

	"pbx-agent/asteriskconf"
)

// optional loads a file that may be absent; an unreadable one becomes a note.
func (d *discoverer) optional(file string) *asteriskconf.Config {
	name := rel(path.Join(d.res.EtcDir, file))
	cfg, err := asteriskconf.Load(d.opts.FS, name)
	switch {
	case err == nil:
		return cfg
	case errors.Is(err, fs.ErrNotExist):
	case errors.Is(err, fs.ErrPermission):
		d.note("%s is not readable by this user; skipped", abs(name))
	default:
		d.note("%s skipped: %v", abs(name), err)
	}
	return nil
}

// loopbackOf returns the loopback address of a's family.
func loopbackOf(a netip.Addr) netip.Addr {
	if a.Is6() && !a.Is4In6() {
		return netip.IPv6Loopback()
	}
	return netip.AddrFrom4([4]byte{127, 0, 0, 1})
}

// manager reads manager.conf: AMI address, port and a usable user.
func (d *discoverer) manager() {
	file := "manager.conf"
	if d.opts.ManagerConf != "" {
		file = abs(rel(d.opts.ManagerConf))
	}
	d.res.ManagerConf = abs(rel(path.Join(d.res.EtcDir, file)))
	if path.IsAbs(file) {
		d.res.ManagerConf = file
	}
	n := len(d.errs)
	cfg := d.load(file, true)
	if cfg == nil {
		if len(d.errs) > n {
			d.res.ManagerErr = d.errs[len(d.errs)-1]
		}
		return
	}
	acls := d.optional("acl.conf")
	m, err := asteriskconf.NewManager(cfg, acls)
	if err != nil {
		d.res.ManagerErr = fmt.Errorf("%w: %s: %w", ErrConfig, d.res.ManagerConf, err)
		d.errs = append(d.errs, d.res.ManagerErr)
		return
	}
	d.add("asterisk_manager_conf", d.res.ManagerConf, "found in "+d.res.EtcDir)
	gen := cfg.Section("general")

	host := netip.AddrFrom4([4]byte{127, 0, 0, 1})
	src := "default (manager.conf sets no bindaddr: Asterisk binds 0.0.0.0)"
	if v, ok := lastVar(gen, "bindaddr"); ok {
		src = where(v)
		if m.General.BindAddr.IsValid() {
			host = m.General.BindAddr
			if host.IsUnspecified() {
				host = loopbackOf(host)
				src += " (" + v.Value + ": reached on loopback)"
			}
		}
	}
	d.res.AMIHost = host.String()
	d.add("ami_host", d.res.AMIHost, src)

	d.res.AMIPort = m.General.Port
	src = "default"
	if v, ok := lastVar(gen, "port"); ok {
		src = where(v)
	}
	d.add("ami_port", strconv.Itoa(d.res.AMIPort), src)

	if !m.General.Enabled {
		err := fmt.Errorf("%w: %s: enabled = no in [general]", ErrAMI, d.res.ManagerConf)
		d.res.AMIUserErr = err
		d.errs = append(d.errs, err)
		return
	}
	u, err := m.SelectUser(asteriskconf.AgentNeed(d.opts.AMIUser, host))
	if err != nil {
		d.res.AMIUserErr = err
		d.errs = append(d.errs, fmt.Errorf("%w: %w", ErrAMI, err))
		if cu := m.User(d.opts.AMIUser); cu != nil {
			d.res.AMIRead = cu.Read
		}
		return
	}
	d.res.AMIUser, d.res.AMISecret, d.res.AMIRead = u.Name, u.Secret, u.Read
	usrc := fmt.Sprintf("%s:%d [%s] read=%s", abs(u.File), u.Line, u.Name, u.Read)
	d.add("ami_user", u.Name, usrc)
	d.add("ami_secret", "(set)", fmt.Sprintf("%s:%d [%s] secret", abs(u.File), u.Line, u.Name))
}

// sip reads pjsip.conf transports and sip.conf's bind addresses.
func (d *discoverer) sip() {
	d.modules = d.optional("modules.conf")
	if d.moduleLoaded("res_pjsip.so") {
		if cfg := d.optional("pjsip.conf"); cfg != nil {
			d.pjsip(cfg)
		}
	} else {
		d.note("res_pjsip.so is not loaded (modules.conf): pjsip.conf ignored")
	}
	if d.moduleLoaded("chan_sip.so") {
		if cfg := d.optional("sip.conf"); cfg != nil {
			d.chanSIP(cfg)
		}
	} else {
		d.note("chan_sip.so is not loaded (modules.conf): sip.conf ignored")
	}
	var ports []int
	var files []string
	for _, b := range d.res.SIP {
		ports = append(ports, b.Port)
		f, _, _ := strings.Cut(b.Source, ":")
		if !containsStr(files, f) {
			files = append(files, f)
		}
	}
	if len(ports) == 0 {
		d.note("no SIP listener found in pjsip.conf or sip.conf; sipport keeps its configured or default value")
		return
	}
	d.res.SIPPorts = sortedPorts(ports)
	d.add("sipport", FormatPorts(d.res.SIPPorts), strings.Join(files, ", "))
}

func containsStr(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

func (d *discoverer) addBind(b SIPBind) {
	d.res.SIP = append(d.res.SIP, b)
	d.add("sip_bind", fmt.Sprintf("%s %s %s", b.Driver, b.Proto, netip.AddrPortFrom(b.Addr, uint16(b.Port))), b.Source)
}

func (d *discoverer) pjsip(cfg *asteriskconf.Config) {
	for _, s := range cfg.Sections {
		if s.Template {
			continue
		}
		if t, _ := s.Value("type"); !strings.EqualFold(strings.TrimSpace(t), "transport") {
			continue
		}
		proto := "udp"
		if p, ok := s.Value("protocol"); ok {
			proto = strings.ToLower(strings.TrimSpace(p))
		}
		v, ok := lastVar(s, "bind")
		if !ok {
			d.note("pjsip.conf [%s]: transport without bind; skipped", s.Name)
			continue
		}
		switch proto {
		case "udp", "tcp":
		case "tls":
			d.note("%s [%s]: TLS transport skipped (encrypted SIP cannot be sniffed)", where(v), s.Name)
			continue
		default:
			d.note("%s [%s]: %s transport skipped (served by http.conf's server)", where(v), s.Name, proto)
			continue
		}
		addr, port, err := parseHostPort(v.Value)
		if err != nil {
			d.errs = append(d.errs, fmt.Errorf("%w: %s: bind: %w", ErrConfig, where(v), err))
			continue
		}
		if port == 0 {
			port = DefaultSIPPort
		}
		d.addBind(SIPBind{Driver: "pjsip", Proto: proto, Addr: addr, Port: port, Source: where(v) + " [" + s.Name + "]"})
	}
}

func (d *discoverer) chanSIP(cfg *asteriskconf.Config) {
	g := cfg.Section("general")
	if g == nil {
		return
	}
	bindPort, portSrc := DefaultSIPPort, ""
	if v, ok := lastVar(g, "bindport"); ok {
		p, err := parsePort(v.Value)
		if err != nil {
			d.errs = append(d.errs, fmt.Errorf("%w: %s: bindport: %w", ErrConfig, where(v), err))
		} else {
			bindPort, portSrc = p, where(v)
		}
	}
	listen := func(proto, key, fallbackKey string) {
		v, ok := lastVar(g, key)
		if !ok && fallbackKey != "" {
			v, ok = lastVar(g, fallbackKey)
		}
		addr, port := netip.IPv4Unspecified(), 0
		src := "default [general]"
		if ok {
			a, p, err := parseHostPort(v.Value)
			if err != nil {
				d.errs = append(d.errs, fmt.Errorf("%w: %s: %s: %w", ErrConfig, where(v), v.Name, err))
				return
			}
			addr, port, src = a, p, where(v)+" [general]"
		} else if portSrc != "" {
			src = portSrc + " [general]"
		}
		if port == 0 {
			port = bindPort
		}
		d.addBind(SIPBind{Driver: "sip", Proto: proto, Addr: addr, Port: port, Source: src})
	}
	listen("udp", "udpbindaddr", "bindaddr")
	if v, ok := g.Value("tcpenable"); ok && truthy(v) {
		listen("tcp", "tcpbindaddr", "")
	}
	if v, ok := g.Value("tlsenable"); ok && truthy(v) {
		d.note("sip.conf: TLS listener skipped (encrypted SIP cannot be sniffed)")
	}
}

// rtp reads rtp.conf's port range.
func (d *discoverer) rtp() {
	d.res.RTPStart, d.res.RTPEnd = DefaultRTPStart, DefaultRTPEnd
	src := "default (no rtp.conf)"
	if cfg := d.optional("rtp.conf"); cfg != nil {
		src = "default (rtp.conf sets no rtpstart/rtpend)"
		g := cfg.Section("general")
		var srcs []string
		for _, kv := range []struct {
			key string
			dst *int
		}{{"rtpstart", &d.res.RTPStart}, {"rtpend", &d.res.RTPEnd}} {
			v, ok := lastVar(g, kv.key)
			if !ok {
				continue
			}
			p, err := parsePort(v.Value)
			if err != nil {
				d.errs = append(d.errs, fmt.Errorf("%w: %s: %s: %w", ErrConfig, where(v), kv.key, err))
				continue
			}
			*kv.dst = p
			srcs = append(srcs, where(v))
		}
		if len(srcs) > 0 {
			src = strings.Join(srcs, ", ")
		}
	}
	if d.res.RTPEnd < d.res.RTPStart {
		d.note("rtp.conf: rtpend %d < rtpstart %d; using Asterisk's defaults", d.res.RTPEnd, d.res.RTPStart)
		d.res.RTPStart, d.res.RTPEnd = DefaultRTPStart, DefaultRTPEnd
	}
	d.add("rtp_range", fmt.Sprintf("%d-%d", d.res.RTPStart, d.res.RTPEnd), src)
}

// ari reads http.conf and ari.conf.
func (d *discoverer) ari() {
	hc := d.optional("http.conf")
	if hc == nil {
		d.note("no readable http.conf: ARI not discovered")
		return
	}
	g := hc.Section("general")
	if v, ok := g.Value("enabled"); !ok || !truthy(v) {
		d.note("http.conf: HTTP server not enabled: ARI not available")
		return
	}
	bv, ok := lastVar(g, "bindaddr")
	if !ok {
		d.note("http.conf: no bindaddr: Asterisk's HTTP server does not listen; ARI not available")
		return
	}
	host, _, err := parseHostPort(bv.Value)
	if err != nil {
		d.errs = append(d.errs, fmt.Errorf("%w: %s: bindaddr: %w", ErrConfig, where(bv), err))
		return
	}
	if host.IsUnspecified() {
		host = loopbackOf(host)
	}
	port := DefaultHTTPPort
	if v, ok := lastVar(g, "bindport"); ok {
		if port, err = parsePort(v.Value); err != nil {
			d.errs = append(d.errs, fmt.Errorf("%w: %s: bindport: %w", ErrConfig, where(v), err))
			return
		}
	}
	prefix := ""
	if v, ok := g.Value("prefix"); ok {
		if prefix = strings.Trim(strings.TrimSpace(v), "/"); prefix != "" {
			prefix += "/"
		}
	}
	ac := d.optional("ari.conf")
	if ac == nil {
		d.note("no readable ari.conf: ARI not discovered")
		return
	}
	if v, ok := ac.Section("general").Value("enabled"); ok && !truthy(v) {
		d.note("ari.conf: enabled = no: ARI not available")
		return
	}
	var pick, readOnly *asteriskconf.Section
	for _, s := range ac.Sections {
		if s.Template || strings.EqualFold(s.Name, "general") {
			continue
		}
		if t, _ := s.Value("type"); !strings.EqualFold(strings.TrimSpace(t), "user") {
			continue
		}
		if f, _ := s.Value("password_format"); strings.EqualFold(strings.TrimSpace(f), "crypt") {
			d.note("ari.conf [%s]: crypt password cannot be used by the agent; skipped", s.Name)
			continue
		}
		if pw, _ := s.Value("password"); pw == "" {
			continue
		}
		if ro, _ := s.Value("read_only"); truthy(ro) {
			if readOnly == nil {
				readOnly = s
			}
			continue
		}
		pick = s
		break
	}
	if pick == nil && readOnly != nil {
		pick = readOnly
		d.note("ari.conf [%s] is read_only: recording pause and snoop will be refused", pick.Name)
	}
	if pick == nil {
		d.note("ari.conf: no user with a plain password: ARI not available")
		return
	}
	pw, _ := pick.Value("password")
	d.res.ARI = &ARI{
		URL:      "http://" + net.JoinHostPort(host.String(), strconv.Itoa(port)) + "/" + prefix + "ari",
		User:     pick.Name,
		Password: pw,
	}
	d.add("ari_url", d.res.ARI.URL, where(bv))
	d.add("ari_user", pick.Name, fmt.Sprintf("%s:%d [%s]", abs(pick.File), pick.Line, pick.Name))
}
