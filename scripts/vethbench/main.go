// Command vethbench measures live capture: it creates a network namespace
// with a veth pair, runs pbx-agent capturing on one end (per-call SIP and
// RTP pcaps, compressed: the defaults), and injects a capture file into the
// other end at rising packet rates, each for a fixed time. After each step
// it reads the agent's /metrics and reports the frames sent and captured,
// the kernel's drops (AF_PACKET ring full), the agent's own drops (spool
// queue full) and the CPU time of the agent and the injector. It prints the
// highest rate with every frame captured, no kernel drop and no agent drop.
//
// The injector is tcpreplay (--pps) when it is installed, else a built-in
// one: an AF_PACKET socket on the veth end, frames paced by the clock. Both
// run on the same machine as the agent and share its cores.
//
//	vethbench -agent .tmp/pbx-agent -rates 50000,100000,200000 -step 60s FILE.pcap
//
// Root (CAP_NET_ADMIN, CAP_SYS_ADMIN for namespaces) and iproute2 are needed.
package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// childEnv marks the bench's own helper processes (injector, scraper) run
// inside the namespace: with it set, the binary (the test binary too) runs
// the helper named by its first argument and nothing else.
const childEnv = "PBX_VETHBENCH_CHILD"

// runChild runs a helper subcommand and exits.
func runChild() {
	var err error
	switch {
	case len(os.Args) < 2:
		err = errors.New("no subcommand")
	case os.Args[1] == "inject":
		err = runInject(os.Args[2:])
	case os.Args[1] == "scrape":
		err = runScrape(os.Args[2:])
	default:
		err = fmt.Errorf("unknown subcommand %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "vethbench:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// child returns the command that runs helper args of this binary in
// namespace ns.
func child(ctx context.Context, self, ns string, args ...string) *exec.Cmd {
	c := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns, self}, args...)...)
	c.Env = append(os.Environ(), childEnv+"=1")
	return c
}

func main() {
	if os.Getenv(childEnv) != "" {
		runChild()
	}
	cfg := benchConfig{}
	fs := flag.NewFlagSet("vethbench", flag.ExitOnError)
	fs.StringVar(&cfg.agent, "agent", ".tmp/pbx-agent", "pbx-agent binary")
	rates := fs.String("rates", "50000,100000,200000,400000,800000", "packet rates to try, rising (packets/s)")
	fs.DurationVar(&cfg.step, "step", 60*time.Second, "injection time per rate")
	fs.StringVar(&cfg.injector, "injector", "auto", "auto (tcpreplay when installed), tcpreplay or builtin")
	fs.BoolVar(&cfg.all, "all", false, "try every rate (default: stop after the first with a loss)")
	fs.StringVar(&cfg.extra, "set", "", "extra agent config, key=value[,key=value] (e.g. pcap_dump_zip=no)")
	_ = fs.Parse(os.Args[1:])
	if fs.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: vethbench [flags] FILE.pcap")
		os.Exit(2)
	}
	cfg.file = fs.Arg(0)
	for _, r := range strings.Split(*rates, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(r))
		if err != nil || n <= 0 {
			fmt.Fprintf(os.Stderr, "vethbench: bad rate %q\n", r)
			os.Exit(2)
		}
		cfg.rates = append(cfg.rates, n)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := run(ctx, cfg, os.Stdout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "vethbench:", err)
		os.Exit(1)
	}
	fmt.Printf("highest rate with every frame captured, 0 kernel drops, 0 agent drops: %d packets/s (%s injector)\n", res.best, res.injector)
}

type benchConfig struct {
	agent, file, injector, extra string
	rates                        []int
	step                         time.Duration
	all                          bool
	stderr                       io.Writer // the agent's and injector's stderr (nil: discarded)
}

// stepResult is what one rate step measured.
type stepResult struct {
	rate               int
	sent, captured     uint64
	kernelDrops        uint64
	agentDrops         uint64
	seconds            float64 // injection time
	achieved           float64 // packets/s the injector reached
	agentCPU, injCPU   float64 // seconds
	spoolPackets       uint64  // RTP+SIP+RTCP packets the spool stored
	spoolBytes         uint64  // bytes the spool wrote (compressed)
	lost               bool
	injector, injError string
}

type benchResult struct {
	steps    []stepResult
	best     int
	injector string
	files    map[string]int // files the agent left in its spool, by kind
}

// ErrNoNamespace: namespaces or veth pairs cannot be made here.
var ErrNoNamespace = errors.New("cannot create a network namespace with a veth pair (root with CAP_NET_ADMIN and iproute2 needed)")

// run sets the namespace up, runs the agent and the steps, and tears it
// all down.
func run(ctx context.Context, cfg benchConfig, out io.Writer) (*benchResult, error) {
	file, err := filepath.Abs(cfg.file)
	if err != nil {
		return nil, err
	}
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	inj := cfg.injector
	if inj == "auto" {
		inj = "builtin"
		if _, err := exec.LookPath("tcpreplay"); err == nil {
			inj = "tcpreplay"
		}
	}
	ns := fmt.Sprintf("pbxveth%d", os.Getpid())
	if err := setupNamespace(ns); err != nil {
		return nil, err
	}
	defer exec.Command("ip", "netns", "del", ns).Run()

	agent, err := startAgent(cfg, ns)
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(agent.dir)
	defer agent.stop()
	scrape := func() (map[string]float64, error) {
		var b bytes.Buffer
		c := child(ctx, self, ns, "scrape", "http://"+metricsAddr+"/metrics")
		c.Stdout = &b
		if err := c.Run(); err != nil {
			return nil, err
		}
		return parseMetrics(&b), nil
	}
	if err := waitReady(ctx, scrape); err != nil {
		return nil, err
	}
	res := &benchResult{injector: inj}
	fmt.Fprintf(out, "| rate packets/s | sent | captured | kernel drops | agent drops | achieved packets/s | agent CPU s | injector CPU s | spool MB written |\n|---|---|---|---|---|---|---|---|---|\n")
	for _, rate := range cfg.rates {
		st, err := runStep(ctx, cfg, ns, self, file, inj, rate, agent.cmd.Process.Pid, scrape)
		if err != nil {
			return res, err
		}
		res.steps = append(res.steps, st)
		mark := ""
		if st.lost {
			mark = " ✗"
		}
		fmt.Fprintf(out, "| %d%s | %d | %d | %d | %d | %.0f | %.2f | %.2f | %.1f |\n", rate, mark, st.sent, st.captured,
			st.kernelDrops, st.agentDrops, st.achieved, st.agentCPU, st.injCPU, float64(st.spoolBytes)/1e6)
		if !st.lost && st.sent > 0 {
			res.best = rate
		}
		if st.lost && !cfg.all {
			break
		}
	}
	agent.stop() // it writes out the calls still open
	res.files = countFiles(filepath.Join(agent.dir, "spool"))
	return res, nil
}

// metricsAddr is where the agent serves /metrics inside the namespace
// (nothing else listens there).
const metricsAddr = "127.0.0.1:9187"

// agentProc is the agent under test, running in the namespace.
type agentProc struct {
	cmd     *exec.Cmd
	dir     string // its config and spool (the caller removes it)
	stopped bool
}

// startAgent runs the agent in namespace ns, capturing on its veth end,
// with its config and spool in a new temporary directory.
func startAgent(cfg benchConfig, ns string) (*agentProc, error) {
	agent, err := filepath.Abs(cfg.agent)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "vethbench")
	if err != nil {
		return nil, err
	}
	a := &agentProc{dir: dir}
	if a.cmd, err = agentCommand(cfg, ns, agent, dir); err == nil {
		err = a.cmd.Start()
	}
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return a, nil
}

// agentCommand writes the agent's config into dir and returns the command
// that runs it in namespace ns.
func agentCommand(cfg benchConfig, ns, agent, dir string) (*exec.Cmd, error) {
	conf := filepath.Join(dir, "agent.conf")
	if err := os.WriteFile(conf, []byte("[general]\nsavesip = yes\nsavertp = yes\nmanagerport = 0\nhttp_bind =\nasterisk_manager_conf = /nonexistent\n"), 0o644); err != nil {
		return nil, err
	}
	args := []string{"netns", "exec", ns, agent, "-config", conf, "-spooldir", filepath.Join(dir, "spool"),
		"-set", "interface=vb", "-set", "metrics_bind=" + metricsAddr}
	if cfg.extra != "" {
		for _, kv := range strings.Split(cfg.extra, ",") {
			args = append(args, "-set", kv)
		}
	}
	cmd := exec.Command("ip", args...)
	cmd.Stdout, cmd.Stderr = cfg.stderr, cfg.stderr
	return cmd, nil
}

// stop ends the agent with SIGTERM (SIGKILL after 20 s); once.
func (a *agentProc) stop() {
	if a.stopped {
		return
	}
	a.stopped = true
	_ = a.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = a.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		_ = a.cmd.Process.Kill()
		<-done
	}
}

// waitReady waits (30 s at most) until the agent's metrics answer with the
// capture's series.
func waitReady(ctx context.Context, scrape func() (map[string]float64, error)) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		m, err := scrape()
		if err == nil && hasKey(m, "pbx_sniffer_frames_total") {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("agent not ready after 30 s (metrics: %v)", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(300 * time.Millisecond):
		}
	}
}

// countFiles counts the spool's files by kind (".pcap.gz", ".pcap", …).
func countFiles(dir string) map[string]int {
	n := map[string]int{}
	_ = filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			name := d.Name()
			switch {
			case strings.HasSuffix(name, ".pcap.gz"):
				n[".pcap.gz"]++
			default:
				n[filepath.Ext(name)]++
			}
		}
		return nil
	})
	return n
}

// command is exec.Command (tests build the agent with it).
var command = exec.Command

// probeNamespace tells whether namespaces can be made here (root with the
// rights, iproute2 installed).
func probeNamespace() error {
	ns := fmt.Sprintf("pbxvethprobe%d", os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		return fmt.Errorf("%w: %v: %s", ErrNoNamespace, err, bytes.TrimSpace(out))
	}
	return exec.Command("ip", "netns", "del", ns).Run()
}

func hasKey(m map[string]float64, k string) bool { _, ok := m[k]; return ok }

// setupNamespace makes namespace ns with a veth pair va–vb, both up, IPv6
// off (no router solicitations or DAD frames on the captured end).
func setupNamespace(ns string) error {
	steps := [][]string{
		{"netns", "add", ns},
		{"-n", ns, "link", "add", "va", "type", "veth", "peer", "name", "vb"},
		{"netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"},
		{"netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=1"},
		{"-n", ns, "link", "set", "lo", "up"},
		{"-n", ns, "link", "set", "va", "up"},
		{"-n", ns, "link", "set", "vb", "up"},
	}
	for i, s := range steps {
		if out, err := exec.Command("ip", s...).CombinedOutput(); err != nil {
			if i > 0 {
				_ = exec.Command("ip", "netns", "del", ns).Run()
			}
			return fmt.Errorf("%w: ip %s: %v: %s", ErrNoNamespace, strings.Join(s, " "), err, bytes.TrimSpace(out))
		}
	}
	return nil
}

// runStep injects at rate for cfg.step and reads what the agent saw.
func runStep(ctx context.Context, cfg benchConfig, ns, self, file, inj string, rate, agentPID int,
	scrape func() (map[string]float64, error)) (stepResult, error) {
	st := stepResult{rate: rate, injector: inj}
	m0, err := scrape()
	if err != nil {
		return st, err
	}
	cpu0 := procCPU(agentPID)
	secs := int(cfg.step.Round(time.Second) / time.Second)
	secs = max(secs, 1)
	var c *exec.Cmd
	if inj == "tcpreplay" {
		args := []string{"netns", "exec", ns, "tcpreplay", "-i", "va", "--pps=" + strconv.Itoa(rate),
			"--loop=0", "--duration=" + strconv.Itoa(secs)}
		if rate >= 100000 {
			// several packets per timing interval, as tcpreplay advises for high rates
			args = append(args, "--pps-multi="+strconv.Itoa(max(1, rate/50000)))
		}
		c = exec.CommandContext(ctx, "ip", append(args, file)...)
	} else {
		c = child(ctx, self, ns, "inject", "-i", "va", "-pps", strconv.Itoa(rate), "-duration", cfg.step.String(), file)
	}
	var stdout, stderr bytes.Buffer
	c.Stdout, c.Stderr = &stdout, &stderr
	t0 := time.Now()
	err = c.Run()
	st.seconds = time.Since(t0).Seconds()
	if c.ProcessState != nil {
		st.injCPU = (c.ProcessState.UserTime() + c.ProcessState.SystemTime()).Seconds()
	}
	if err != nil {
		return st, fmt.Errorf("injector at %d packets/s: %v: %s", rate, err, bytes.TrimSpace(stderr.Bytes()))
	}
	st.sent, st.achieved = sentPackets(inj, stdout.String()+stderr.String())
	if st.achieved == 0 {
		st.achieved = float64(st.sent) / st.seconds
	}
	if st.sent == 0 {
		return st, fmt.Errorf("injector at %d packets/s sent nothing: %s %s", rate, stdout.String(), stderr.String())
	}
	// Let the agent read what is still in its ring and the spool write out.
	var m1 map[string]float64
	last := -1.0
	for i := 0; i < 60; i++ {
		time.Sleep(time.Second)
		if m1, err = scrape(); err != nil {
			return st, err
		}
		f := m1["pbx_sniffer_frames_total"]
		if f == last && m1["pbx_spool_queued_bytes"] == 0 {
			break
		}
		last = f
	}
	st.agentCPU = procCPU(agentPID) - cpu0
	d := func(k string) uint64 { return uint64(m1[k] - m0[k]) }
	st.captured = d("pbx_sniffer_frames_total")
	st.kernelDrops = d("pbx_sniffer_capture_drops_total")
	st.agentDrops = d("pbx_spool_dropped_packets_total") + d("pbx_spool_dropped_audio_frames_total")
	for k := range m1 { // queues between capture and the packet path, when there are any
		if strings.HasPrefix(k, "pbx_sniffer_") && strings.Contains(k, "queue") && strings.Contains(k, "drop") {
			st.agentDrops += d(k)
		}
	}
	st.spoolPackets = d("pbx_spool_sip_packets_total") + d("pbx_spool_rtp_packets_total") + d("pbx_spool_rtcp_packets_total")
	st.spoolBytes = d("pbx_spool_written_bytes_total")
	st.lost = st.captured < st.sent || st.kernelDrops > 0 || st.agentDrops > 0
	return st, nil
}

var (
	tcpreplayActual = regexp.MustCompile(`Actual: (\d+) packets`)
	tcpreplayRated  = regexp.MustCompile(`Rated: .* ([0-9.]+) pps`)
)

// sentPackets reads the injector's count of frames sent and, from
// tcpreplay, the rate it achieved while sending.
func sentPackets(inj, out string) (uint64, float64) {
	if inj == "tcpreplay" {
		var n uint64
		var pps float64
		if m := tcpreplayActual.FindStringSubmatch(out); m != nil {
			n, _ = strconv.ParseUint(m[1], 10, 64)
		}
		if m := tcpreplayRated.FindStringSubmatch(out); m != nil {
			pps, _ = strconv.ParseFloat(m[1], 64)
		}
		return n, pps
	}
	var n uint64
	_, _ = fmt.Sscanf(strings.TrimSpace(out), "sent %d", &n)
	return n, 0
}

// procCPU is a process's user+system CPU time in seconds (/proc/PID/stat).
func procCPU(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// fields after the command name (which may hold spaces) in parentheses
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseFloat(f[11], 64)
	s, _ := strconv.ParseFloat(f[12], 64)
	return (u + s) / 100 // USER_HZ
}

// parseMetrics reads the Prometheus text format's unlabelled samples (and
// sums labelled ones under their name).
func parseMetrics(r io.Reader) map[string]float64 {
	m := map[string]float64{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		name := line[:i]
		if j := strings.IndexByte(name, '{'); j >= 0 {
			name = name[:j]
		}
		m[name] += v
	}
	return m
}

func runScrape(args []string) error {
	if len(args) != 1 {
		return errors.New("usage: vethbench scrape URL")
	}
	resp, err := http.Get(args[0])
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", args[0], resp.Status)
	}
	_, err = io.Copy(os.Stdout, resp.Body)
	return err
}
