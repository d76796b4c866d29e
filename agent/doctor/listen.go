package doctor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"syscall"

	"pbx-agent/agent/config"
	"pbx-agent/agent/health"
	"pbx-agent/agent/manager/client"
)

type portState int

const (
	portFree portState = iota
	portInUse
	portBad
)

// probeListen tries to bind addr the way the agent will.
func probeListen(addr string) (portState, error) {
	ln, err := net.Listen("tcp", addr)
	if err == nil {
		ln.Close()
		return portFree, nil
	}
	if errors.Is(err, syscall.EADDRINUSE) {
		return portInUse, err
	}
	return portBad, err
}

// checkManager checks the manager API's port and its AES key state.
func checkManager(ctx context.Context, r *Report, env *Env, cfg *config.Config) {
	if cfg.ManagerPort == 0 && cfg.ManagerSocket == "" {
		r.add("manager-api", StatusSkip, "", "managerport = 0 and no managersocket: manager API off")
		return
	}
	if cfg.ManagerPort > 0 {
		addr := joinAddr(cfg.ManagerIP, cfg.ManagerPort)
		st, err := probeListen(addr)
		switch st {
		case portFree:
			r.add("manager-api", StatusOK, "", "%s free: the agent will listen there", addr)
		case portInUse:
			sctx, cancel := context.WithTimeout(ctx, env.Timeout)
			reply, xerr := client.Exchange(sctx, "tcp", addr, "sniffer_stat", nil)
			cancel()
			var stat struct {
				Build string `json:"build"`
				Drops string `json:"pbCountPacketDrop"`
			}
			if xerr == nil && json.Unmarshal(reply, &stat) == nil && strings.Contains(stat.Build, "pbx-agent") {
				r.add("manager-api", StatusOK, "", "a running agent answers on %s (%s)", addr, stat.Build)
				if stat.Drops != "" {
					r.add("kernel-drops", StatusInfo, "", "running agent: %s packets dropped so far", stat.Drops)
				}
			} else {
				r.add("manager-api", StatusFail, "stop the other program or set managerport (VoIPmonitor's sniffer also uses 5029)", "%s is taken by another program", addr)
			}
		default:
			r.add("manager-api", StatusFail, "set managerip to an address of this host (127.0.0.1, or 0.0.0.0 for all)", "cannot listen on %s: %v", addr, err)
		}
	}
	if cfg.ManagerSocket != "" {
		r.add("manager-api", StatusInfo, "", "unix socket %s", cfg.ManagerSocket)
	}
	ip, _ := netip.ParseAddr(cfg.ManagerIP)
	switch {
	case cfg.ManagerAESKey != "":
		msg := "AES key set: clients must encrypt"
		if cfg.ManagerEnableUnencrypted {
			msg = "AES key set; unencrypted commands also accepted (manager_enable_unencrypted = yes)"
		}
		r.add("manager-aes", StatusOK, "", "%s", msg)
	case cfg.ManagerPort > 0 && !ip.IsLoopback():
		r.add("manager-aes", StatusWarn, "`pbx-agent gen-aes-key`, then set manager_aes_key and manager_aes_iv (or managerip = 127.0.0.1)",
			"manager API on %s without an AES key: anyone reaching the port can list and listen to calls", cfg.ManagerIP)
	default:
		r.add("manager-aes", StatusInfo, "", "no AES key: plaintext, loopback only")
	}
}

// checkHTTP checks http_bind (and metrics_bind).
func checkHTTP(ctx context.Context, r *Report, env *Env, cfg *config.Config) {
	if cfg.HTTPBind == "" {
		r.add("http", StatusSkip, "", "http_bind empty: web UI and APIs off")
	} else {
		checkHTTPAddr(ctx, r, env, "http", "http_bind", cfg.HTTPBind)
	}
	if cfg.MetricsBind != "" {
		checkHTTPAddr(ctx, r, env, "metrics", "metrics_bind", cfg.MetricsBind)
	}
}

func checkHTTPAddr(ctx context.Context, r *Report, env *Env, check, key, addr string) {
	st, err := probeListen(addr)
	switch st {
	case portFree:
		r.add(check, StatusOK, "", "%s free: the agent will listen there", addr)
	case portInUse:
		host, port, _ := net.SplitHostPort(addr)
		if ip, err := netip.ParseAddr(host); host == "" || (err == nil && ip.IsUnspecified()) {
			host = "127.0.0.1"
		}
		base := "http://" + net.JoinHostPort(host, port)
		hctx, cancel := context.WithTimeout(ctx, env.Timeout)
		defer cancel()
		if live, ok := getAgentJSON[health.Live](hctx, base+"/healthz"); ok {
			r.add(check, StatusOK, "", "the running agent answers on %s (pbx-agent %s, up %.0f s)", addr, live.Version, live.Uptime)
			if rd, ok := getAgentJSON[health.Ready](hctx, base+"/readyz"); ok {
				st, hint := StatusOK, ""
				if !rd.Ready {
					st, hint = StatusWarn, "see the agent's log (journalctl -u pbx-agent)"
				}
				r.add("ready", st, hint, "running agent: ready=%v, capture %s, database %s, AMI %s", rd.Ready, rd.Capture, rd.Database, rd.AMI)
			}
			return
		}
		r.add(check, StatusFail, "stop the other program or change "+key, "%s is taken by another program", addr)
	default:
		r.add(check, StatusFail, fmt.Sprintf("set %s to host:port on an address of this host (ports below 1024 need CAP_NET_BIND_SERVICE)", key), "cannot listen on %s: %v", addr, err)
	}
}

// getAgentJSON fetches url and decodes it when it is a pbx-agent answer
// (JSON with "agent":"pbx-agent"): a taken port is then our own agent.
func getAgentJSON[T health.Live | health.Ready](ctx context.Context, url string) (T, bool) {
	var v T
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return v, false
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return v, false
	}
	defer resp.Body.Close()
	var probe struct {
		Agent string `json:"agent"`
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if err != nil || json.Unmarshal(body, &probe) != nil || probe.Agent != health.AgentName {
		return v, false
	}
	return v, json.Unmarshal(body, &v) == nil
}
