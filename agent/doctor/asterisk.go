package doctor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"

	"pbx-agent/agent/config"
	"pbx-agent/agent/discover"
	"pbx-agent/ami"
	"pbx-agent/asteriskconf"
)

// permHint is the fix for a manager.conf the agent's user cannot read.
func permHint(path string) string {
	return fmt.Sprintf("let group asterisk read it and put the agent's user in that group: `chgrp asterisk %s && chmod 640 %s && usermod -aG asterisk pbx-agent`, then `systemctl restart pbx-agent` (the Debian package's postinst does the usermod)", path, path)
}

// checkDiscovery runs auto-discovery as the daemon does, applies it to cfg
// and reports manager.conf access, the AMI user, SIP ports, RTP range and
// interface.
// noAsterisk: "asterisk_manager_conf =" and no ami_user, so no Asterisk is
// expected here (the embedded demo): the daemon reads none of Asterisk's
// files and logs in to no AMI, and doctor checks neither.
func noAsterisk(cfg *config.Config) bool {
	_, set := cfg.Source["asterisk_manager_conf"]
	return set && cfg.AsteriskManagerConf == "" && cfg.AMIUser == ""
}

func checkDiscovery(r *Report, env *Env, cfg *config.Config) *discover.Result {
	if noAsterisk(cfg) {
		r.add("asterisk-etc", StatusSkip, "", "asterisk_manager_conf is empty: Asterisk's files are not read")
		return &discover.Result{}
	}
	opts := discover.OptionsFor(cfg)
	opts.FS, opts.Interfaces = env.FS, env.Interfaces
	res, err := discover.Discover(opts)
	discover.Apply(cfg, res, nil)

	if v, ok := res.Lookup("astetcdir"); ok {
		r.add("asterisk-etc", StatusInfo, "", "%s (%s)", v.Value, v.Source)
	}
	explicitAMI := discover.Explicit(cfg, "ami_user") && discover.Explicit(cfg, "ami_secret")
	mst := StatusFail
	if explicitAMI {
		mst = StatusWarn // the agent can log in without it; classes go unchecked
	}
	switch me := res.ManagerErr; {
	case me == nil:
		r.add("manager.conf", StatusOK, "", "%s readable", res.ManagerConf)
	case errors.Is(me, discover.ErrUnreadable):
		r.add("manager.conf", mst, permHint(res.ManagerConf), "%s is not readable by uid %d: %v", res.ManagerConf, uid(), me)
	case errors.Is(me, discover.ErrNotFound):
		r.add("manager.conf", mst, "set asterisk_manager_conf to Asterisk's manager.conf (astetcdir in asterisk.conf says where it lives), or set ami_host, ami_port, ami_user and ami_secret", "%v", me)
	default:
		r.add("manager.conf", StatusFail, "correct the line named (Asterisk itself refuses it), then `asterisk -rx 'manager reload'`", "%v", me)
	}

	switch {
	case res.AMIUserErr != nil:
		r.add("ami-user", StatusFail, amiUserHint(res.AMIUserErr), "%v", res.AMIUserErr)
	case res.AMIUser != "":
		v, _ := res.Lookup("ami_user")
		r.add("ami-user", StatusOK, "", "%s (%s)", cfg.AMIUser, v.Source)
	case cfg.AMIUser != "":
		r.add("ami-user", StatusInfo, "", "%s (configured; manager.conf not read, classes unchecked)", cfg.AMIUser)
	}

	ports := discover.FormatPorts(cfg.SIPPorts)
	if len(res.SIPPorts) == 0 {
		r.add("sipport", StatusInfo, "", "%s (no SIP listener found in pjsip.conf/sip.conf)", ports)
	} else if discover.Explicit(cfg, "sipport") {
		var missing []string
		for _, b := range res.SIP {
			if !covers(cfg.SIPPorts, b.Port) {
				missing = append(missing, fmt.Sprintf("%d (%s)", b.Port, b.Source))
			}
		}
		if len(missing) > 0 {
			r.add("sipport", StatusWarn, "add those ports to sipport, or remove sipport from the config to use the discovered "+discover.FormatPorts(res.SIPPorts),
				"sipport=%s (%s) misses Asterisk's SIP port %s", ports, cfg.Source["sipport"], strings.Join(missing, ", "))
		} else {
			r.add("sipport", StatusOK, "", "%s (configured; covers Asterisk's %s)", ports, discover.FormatPorts(res.SIPPorts))
		}
	} else {
		v, _ := res.Lookup("sipport")
		r.add("sipport", StatusOK, "", "%s (%s)", ports, v.Source)
	}
	if v, ok := res.Lookup("rtp_range"); ok {
		r.add("rtp-range", StatusInfo, "", "%s (%s)", v.Value, v.Source)
	}

	// Other discovery problems, one line each.
	for _, e := range unjoin(err) {
		if errors.Is(e, discover.ErrAMI) || (res.ManagerErr != nil && e.Error() == res.ManagerErr.Error()) {
			continue
		}
		hint := ""
		if errors.Is(e, discover.ErrInterface) {
			hint = "set interface = the NIC that carries SIP (`ip -br addr`)"
		}
		r.add("discovery", StatusWarn, hint, "%v", e)
	}
	for _, n := range res.Notes {
		r.add("discovery", StatusInfo, "", "%s", n)
	}
	return res
}

func covers(rs []config.PortRange, p int) bool {
	return slices.ContainsFunc(rs, func(r config.PortRange) bool { return r.Contains(uint16(p)) })
}

func unjoin(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// amiUserHint turns SelectUser's rejections into a fix.
func amiUserHint(err error) string {
	var nu *asteriskconf.NoUserError
	if !errors.As(err, &nu) {
		if strings.Contains(err.Error(), "enabled = no") {
			return "set enabled = yes in manager.conf [general], then `asterisk -rx 'module reload manager'`"
		}
		return ""
	}
	var hints []string
	for _, rej := range nu.Rejected {
		switch {
		case strings.Contains(rej.Reason, "not enabled"):
			hints = append(hints, "set enabled = yes in manager.conf [general]")
		case strings.Contains(rej.Reason, "not defined"):
			hints = append(hints, fmt.Sprintf("add a [%s] section to manager.conf or fix ami_user", rej.User))
		default:
			hints = append(hints, fmt.Sprintf("give [%s] read = system,call and write = system,call,reporting, a secret, and permit = %s/255.255.255.255", rej.User, nu.Need.Addr))
		}
	}
	return strings.Join(hints, "; ") + "; then `asterisk -rx 'manager reload'`"
}

// checkAMI connects, logs in and checks the read classes.
func checkAMI(ctx context.Context, r *Report, env *Env, cfg *config.Config, res *discover.Result) {
	if noAsterisk(cfg) {
		r.add("ami", StatusSkip, "", "no AMI login and no manager.conf configured: Asterisk's channels are not followed")
		return
	}
	host := cfg.AMIHost
	if host == "" {
		host = "127.0.0.1"
	}
	addr := joinAddr(host, cfg.AMIPort)
	ctx, cancel := context.WithTimeout(ctx, env.Timeout*2)
	defer cancel()
	var d net.Dialer
	dctx, dcancel := context.WithTimeout(ctx, env.Timeout)
	nc, err := d.DialContext(dctx, "tcp", addr)
	dcancel()
	if err != nil {
		r.add("ami", StatusFail, "is Asterisk running (`systemctl status asterisk`)? manager.conf [general] needs enabled = yes with bindaddr/port matching ami_host/ami_port", "cannot connect to AMI at %s: %v", addr, err)
		return
	}
	conn, err := ami.NewConn(ctx, nc, ami.ConnConfig{WriteTimeout: env.Timeout})
	if err != nil {
		nc.Close()
		r.add("ami", StatusFail, "ami_host/ami_port must point at Asterisk's manager port (manager.conf [general] port, default 5038)", "%s is not an Asterisk manager: %v", addr, err)
		return
	}
	defer conn.Close()
	r.add("ami", StatusOK, "", "reachable at %s (%s)", addr, conn.Banner())
	if cfg.AMIUser == "" {
		r.add("ami-login", StatusSkip, "make manager.conf readable (see above) or set ami_user and ami_secret", "no AMI user known")
		return
	}
	if err := conn.Login(ctx, cfg.AMIUser, cfg.AMISecret, cfg.AMIAuthMD5, "off"); err != nil {
		if errors.Is(err, ami.ErrAuth) {
			r.add("ami-login", StatusFail, fmt.Sprintf("ami_secret must equal the secret of [%s] in manager.conf; leave ami_secret unset to take it from manager.conf (and run `asterisk -rx 'manager reload'` after editing manager.conf)", cfg.AMIUser),
				"login as %s refused: wrong secret (or the user's ACL denies %s)", cfg.AMIUser, host)
		} else {
			r.add("ami-login", StatusFail, "", "login as %s: %v", cfg.AMIUser, err)
		}
		return
	}
	r.add("ami-login", StatusOK, "", "logged in as %s", cfg.AMIUser)

	read, known := asteriskconf.Class(0), false
	if res != nil && res.AMIRead != 0 && (strings.EqualFold(res.AMIUser, cfg.AMIUser) || res.AMIUser == "") {
		read, known = res.AMIRead, true
	}
	switch {
	case !known:
		r.add("ami-classes", StatusWarn, "make manager.conf readable so the doctor can check the user's read= classes", "read classes of %s unknown", cfg.AMIUser)
	case read&asteriskconf.ClassCall == 0:
		r.add("ami-classes", StatusFail, fmt.Sprintf("set read = system,call (or all) in [%s] of manager.conf, then `asterisk -rx 'manager reload'`", cfg.AMIUser),
			"read=%s of %s lacks call: no call events (Newchannel, Hangup, Cdr…) reach the agent", read, cfg.AMIUser)
	case read&asteriskconf.ClassSystem == 0:
		r.add("ami-classes", StatusWarn, fmt.Sprintf("add system to read= of [%s] in manager.conf", cfg.AMIUser),
			"read=%s of %s lacks system: Asterisk restarts (FullyBooted/Shutdown) go unseen", read, cfg.AMIUser)
	default:
		r.add("ami-classes", StatusOK, "", "read=%s covers call and system", read)
	}
	if _, err := conn.Do(ctx, ami.NewAction("CoreShowChannels")); err != nil {
		var ae *ami.ActionError
		if errors.As(err, &ae) && strings.Contains(strings.ToLower(ae.Message), "permission") {
			r.add("ami-actions", StatusFail, fmt.Sprintf("set write = system,call,reporting in [%s] of manager.conf", cfg.AMIUser), "CoreShowChannels refused: %s", ae.Message)
		} else {
			r.add("ami-actions", StatusWarn, "", "CoreShowChannels: %v", err)
		}
	} else {
		r.add("ami-actions", StatusOK, "", "CoreShowChannels answered (channel resync works)")
	}
	lctx, lcancel := context.WithTimeout(ctx, env.Timeout)
	_ = conn.Logoff(lctx)
	lcancel()
}

// checkARI asks ARI for /asterisk/info with the discovered user.
func checkARI(ctx context.Context, r *Report, env *Env, res *discover.Result) {
	if res == nil || res.ARI == nil {
		r.add("ari", StatusSkip, "", "ARI not configured (http.conf/ari.conf); optional: needed for Stasis recording pause and snoop")
		return
	}
	ctx, cancel := context.WithTimeout(ctx, env.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, res.ARI.URL+"/asterisk/info", nil)
	if err != nil {
		r.add("ari", StatusWarn, "", "bad ARI URL %s: %v", res.ARI.URL, err)
		return
	}
	req.SetBasicAuth(res.ARI.User, res.ARI.Password)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		r.add("ari", StatusWarn, "ARI is optional; to use it enable http.conf [general] enabled = yes with bindaddr/bindport and load res_ari", "ARI at %s not reachable: %v", res.ARI.URL, err)
		return
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
		var info struct {
			System struct {
				Version string `json:"version"`
			} `json:"system"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&info)
		r.add("ari", StatusOK, "", "%s answers as user %s (Asterisk %s)", res.ARI.URL, res.ARI.User, orNone(info.System.Version))
	case http.StatusUnauthorized:
		r.add("ari", StatusFail, fmt.Sprintf("check password of [%s] in ari.conf (password_format = plain)", res.ARI.User), "ARI refused user %s (401)", res.ARI.User)
	default:
		r.add("ari", StatusWarn, "is res_ari loaded (`asterisk -rx 'module show like ari'`)?", "ARI at %s answered %s", res.ARI.URL, resp.Status)
	}
}
