// Package doctor checks an installation of the agent and says, for each
// problem, how to fix it: config, Asterisk discovery (manager.conf access,
// AMI user and classes, SIP ports, RTP range), AMI and ARI reachability and
// login, capture permission, interface and BPF filter, kernel drops, spool
// and CDR queue, MySQL (reachability, grants, schema version), the manager
// API and HTTP listeners, and the clock.
//
// Run returns a Report; `pbx-agent doctor` prints it (text or JSON) and a
// /healthz endpoint can serve it (Handler).
package doctor

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net"
	"slices"
	"strings"
	"time"

	"golang.org/x/net/bpf"

	"pbx-agent/agent/config"
	"pbx-agent/agent/discover"
	"pbx-agent/sniffer/capture"
	"pbx-agent/sniffer/codec"
)

// Status is a finding's verdict.
type Status string

// Statuses, from good to bad. Only StatusFail makes the report fail.
const (
	StatusOK   Status = "ok"
	StatusInfo Status = "info"
	StatusSkip Status = "skip"
	StatusWarn Status = "warn"
	StatusFail Status = "fail"
)

// Finding is one line of the report.
type Finding struct {
	Check   string `json:"check"`
	Status  Status `json:"status"`
	Message string `json:"message"`
	Hint    string `json:"hint,omitempty"`
}

// Report is the outcome of Run.
type Report struct {
	Findings []Finding `json:"findings"`
	Fails    int       `json:"fails"`
	Warns    int       `json:"warns"`
	// Discovered is what auto-discovery found (nil when it did not run).
	Discovered *discover.Result `json:"discovered,omitempty"`
}

// OK reports whether no check failed.
func (r *Report) OK() bool { return r.Fails == 0 }

// Find returns the findings of one check.
func (r *Report) Find(check string) []Finding {
	var out []Finding
	for _, f := range r.Findings {
		if f.Check == check {
			out = append(out, f)
		}
	}
	return out
}

func (r *Report) add(check string, st Status, hint, format string, args ...any) {
	r.Findings = append(r.Findings, Finding{Check: check, Status: st, Message: fmt.Sprintf(format, args...), Hint: hint})
	switch st {
	case StatusFail:
		r.Fails++
	case StatusWarn:
		r.Warns++
	}
}

// WriteText prints one line per finding ("ok   ami-login  …") and the hint
// indented below it, then a summary line.
func (r *Report) WriteText(w io.Writer) error {
	width := 0
	for _, f := range r.Findings {
		width = max(width, len(f.Check))
	}
	var b strings.Builder
	for _, f := range r.Findings {
		fmt.Fprintf(&b, "%-4s  %-*s  %s\n", f.Status, width, f.Check, f.Message)
		if f.Hint != "" {
			fmt.Fprintf(&b, "      %-*s  fix: %s\n", width, "", f.Hint)
		}
	}
	switch {
	case r.Fails > 0:
		fmt.Fprintf(&b, "%d failed, %d warnings\n", r.Fails, r.Warns)
	case r.Warns > 0:
		fmt.Fprintf(&b, "all checks passed, %d warnings\n", r.Warns)
	default:
		b.WriteString("all checks passed\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteJSON prints the report as one indented JSON object.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// Env is what the checks look at. Zero fields take the host's real values.
type Env struct {
	// ConfigPath is the agent's config file ("" = none: defaults only).
	ConfigPath string
	// Config, when set, is used instead of loading ConfigPath.
	Config *config.Config
	// Flags override config keys as the daemon's -set does.
	Flags map[string]string
	// FS is the root file system for Asterisk discovery; default "/".
	FS fs.FS
	// Interfaces lists the host's interfaces (default: the real ones).
	Interfaces func() ([]discover.Interface, error)
	// Capabilities returns the effective capability mask (default: CapEff
	// from /proc/self/status).
	Capabilities func() (uint64, error)
	// OpenCapture opens a live capture (default capture.OpenLive); the
	// doctor opens it briefly to prove permission and the BPF filter.
	OpenCapture func(capture.LiveOptions) (capture.Live, error)
	// RxDropped returns the kernel's receive drops of an interface
	// (default /sys/class/net/IF/statistics/rx_dropped).
	RxDropped func(iface string) (uint64, error)
	// ClockSynced reports whether the kernel clock is NTP-synchronised
	// (default adjtimex).
	ClockSynced func() (bool, error)
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Timeout bounds each network check (default 3 s).
	Timeout time.Duration
	// Filter is the BPF program the daemon attaches (default
	// capture.UDPPortFilter()).
	Filter []bpf.Instruction
	// Codecs reports the audio codecs this build decodes and those it
	// plays as silence (default codec.Decodable).
	Codecs func() (yes, no []string)
}

func (e *Env) defaults() {
	if e.Interfaces == nil {
		e.Interfaces = hostInterfaces
	}
	if e.Capabilities == nil {
		e.Capabilities = effectiveCaps
	}
	if e.OpenCapture == nil {
		e.OpenCapture = capture.OpenLive
	}
	if e.RxDropped == nil {
		e.RxDropped = rxDropped
	}
	if e.ClockSynced == nil {
		e.ClockSynced = clockSynced
	}
	if e.Now == nil {
		e.Now = time.Now
	}
	if e.Timeout <= 0 {
		e.Timeout = 3 * time.Second
	}
	if e.Filter == nil {
		e.Filter = capture.UDPPortFilter()
	}
	if e.Codecs == nil {
		e.Codecs = codec.Decodable
	}
}

// Run performs every check in order and returns the report.
func Run(ctx context.Context, env Env) *Report {
	env.defaults()
	r := &Report{}
	cfg := checkConfig(r, &env)
	res := checkDiscovery(r, &env, cfg)
	r.Discovered = res
	checkAMI(ctx, r, &env, cfg, res)
	checkARI(ctx, r, &env, res)
	checkCapture(r, &env, cfg)
	checkHEP(r, &env, cfg, res)
	checkDir(r, "spool", cfg.SpoolDir, "spooldir")
	checkDir(r, "cdr-queue", cfg.QueueDir(), "cdr_queue_dir")
	checkMySQL(ctx, r, &env, cfg)
	checkManager(ctx, r, &env, cfg)
	checkHTTP(ctx, r, &env, cfg)
	checkClock(r, &env)
	checkCodecs(r, &env)
	return r
}

// checkConfig loads the config; on failure the other checks use defaults.
func checkConfig(r *Report, env *Env) *config.Config {
	if env.Config != nil {
		// Discovery is applied to the config: work on a copy so a /healthz
		// request never writes the daemon's live config.
		c := *env.Config
		c.Source = maps.Clone(c.Source)
		c.SIPPorts = slices.Clone(c.SIPPorts)
		c.Interface = slices.Clone(c.Interface)
		r.add("config", StatusOK, "", "given by the caller (%s)", orNone(c.Path))
		return &c
	}
	if env.ConfigPath == "" {
		cfg, _ := config.Parse("", nil, env.Flags)
		if cfg == nil {
			cfg = config.Default()
		}
		r.add("config", StatusInfo, "", "no config file: defaults")
		return cfg
	}
	cfg, err := config.Load(env.ConfigPath, env.Flags)
	if err != nil {
		msg := strings.ReplaceAll(err.Error(), "\n", "; ")
		r.add("config", StatusFail, "run `pbx-agent check-config -config "+env.ConfigPath+"` and correct the lines it names; the other checks use defaults",
			"%s: %s", env.ConfigPath, msg)
		return config.Default()
	}
	r.add("config", StatusOK, "", "%s parsed", env.ConfigPath)
	if w := cfg.NoEffectWarning(); w != "" {
		r.add("config", StatusInfo, "", "%s", w)
	}
	return cfg
}

func orNone(s string) string {
	if s == "" {
		return "no file"
	}
	return s
}

func joinAddr(host string, port int) string {
	return net.JoinHostPort(host, fmt.Sprint(port))
}
