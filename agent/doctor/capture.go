package doctor

import (
	"fmt"
	"strings"

	"golang.org/x/net/bpf"

	"pbx-agent/agent/config"
	"pbx-agent/sniffer/capture"
)

const capHint = "run the agent from the packaged unit (pbx-agent.service: AmbientCapabilities=CAP_NET_RAW CAP_NET_ADMIN), or `setcap cap_net_raw,cap_net_admin=eip /usr/bin/pbx-agent`"

// checkCapture checks the interface, the capture permission, the BPF filter
// (by opening the capture briefly) and the kernel's drop counter.
func checkCapture(r *Report, env *Env, cfg *config.Config) {
	if len(cfg.Interface) == 0 {
		r.add("capture", StatusSkip, "set interface = (or let discovery find it from pjsip.conf/sip.conf)", "no interface configured or discovered: the agent only replays files")
		return
	}
	name := cfg.Interface[0]
	ifs, err := env.Interfaces()
	if err != nil {
		r.add("interface", StatusWarn, "", "cannot list interfaces: %v", err)
	} else {
		var names []string
		found := name == capture.AnyInterface
		for _, i := range ifs {
			names = append(names, i.Name)
			if i.Name == name {
				found = true
				if i.Up {
					r.add("interface", StatusOK, "", "%s exists and is up (%s)", name, cfg.Source["interface"])
				} else {
					r.add("interface", StatusWarn, "`ip link set "+name+" up`", "%s exists but is down", name)
				}
			}
		}
		if !found {
			r.add("interface", StatusFail, "set interface = one of: "+strings.Join(names, ", "), "interface %s does not exist", name)
			return
		}
	}
	if len(cfg.Interface) > 1 {
		r.add("interface", StatusInfo, "", "several interfaces (%s): captured together into one call table, a packet seen on two of them counted once", strings.Join(cfg.Interface, ","))
	}

	caps, err := env.Capabilities()
	switch {
	case err != nil:
		r.add("capture-permission", StatusWarn, "", "cannot read capabilities: %v", err)
	case caps&(1<<capNetRaw) == 0:
		r.add("capture-permission", StatusFail, capHint, "CAP_NET_RAW is not in effect for uid %d: live capture will fail", uid())
		return
	default:
		msg := "CAP_NET_RAW in effect"
		if caps&(1<<capNetAdmin) == 0 {
			msg += " (CAP_NET_ADMIN missing: promiscuous mode unavailable)"
		}
		r.add("capture-permission", StatusOK, "", "%s", msg)
	}

	prog := env.Filter
	user, err := capture.CompileFilter(cfg.Filter) // voipmonitor.conf's filter, after the agent's cut, as the daemon
	if err == nil {
		prog, err = user.After(prog)
	}
	if err != nil {
		r.add("bpf", StatusFail, "see pcap-filter(7) and the README's filter section", "filter: %v", err)
		return
	}
	if _, err := bpf.Assemble(prog); err != nil {
		r.add("bpf", StatusFail, "", "capture filter does not assemble: %v", err)
		return
	}
	l, err := env.OpenCapture(capture.LiveOptions{Interface: strings.Join(cfg.Interface, ","), Filter: prog, BlockSize: 1 << 16, NumBlocks: 2})
	if err != nil {
		r.add("bpf", StatusFail, capHint, "cannot open capture with the filter on %s: %v", name, err)
		return
	}
	_ = l.Close()
	r.add("bpf", StatusOK, "", "capture opened on %s with the %d-instruction filter", name, len(prog))
	if n, err := env.RxDropped(name); err == nil {
		st := StatusInfo
		hint := ""
		if n > 0 {
			hint = "drops counted by the NIC since boot; if they grow while the agent runs, raise the ring (or the NIC's rx ring: `ethtool -G`)"
		}
		r.add("kernel-drops", st, hint, "%s: %s receive drops since boot", name, fmt.Sprint(n))
	}
}
