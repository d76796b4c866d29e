// Command pbx-agent sniffs SIP/RTP beside an Asterisk PBX, ties the calls to
// Asterisk's channels, stores VoIPmonitor-compatible CDRs and serves
// VoIPmonitor's manager and web APIs. See README.md and agent/README.md
// (the command-line contract).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"pbx-agent/sniffer/codec"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

// command is one subcommand: it owns its flags and returns an error instead
// of exiting, so main is the only place that picks an exit code.
type command func(ctx context.Context, args []string, stdout, stderr io.Writer) error

// subcommand is one entry of `pbx-agent help`, in the order shown there.
type subcommand struct {
	name, args, summary string
	run                 command
}

func commands() []subcommand {
	return []subcommand{
		{"replay", "[-ami TRANSCRIPT] [-sipport LIST] [-hep …] [-workers N] CAPTURE...", "print one JSON line per call and REGISTER of capture files", runReplay},
		{"check-config", "[-config PATH]", "validate a config file (errors with file:line, warnings, exit 1 on error)", runCheckConfig},
		{"doctor", "[-config PATH] [-set key=value]... [-json]", "check the installation and the running agent; print a fix for each problem", runDoctor},
		{"manager", "[-h HOST] [-p PORT] [-U SOCKET] [-a] COMMAND...", "send one command to a manager API (listcalls, …)", runManagerClient},
		{"gen", "-o OUT.pcap [-calls N] …", "generate a synthetic SIP/RTP capture", runGen},
		{"gen-aes-key", "", "print a fresh manager_aes_key and manager_aes_iv", runGenAESKeyCmd},
		{"version", "", "print the version and which codecs this build decodes", runVersion},
		{"help", "[COMMAND]", "show this help, or a command's", runHelp},
	}
}

func lookupCommand(name string) (subcommand, bool) {
	for _, c := range commands() {
		if c.name == name {
			return c, true
		}
	}
	return subcommand{}, false
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// run dispatches to a subcommand, or to the daemon when the first argument is
// a flag or absent. It returns the process exit code: 0 success (and help),
// 1 failure, 2 bad command line.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cmd, rest := runDaemon, args
	if len(args) > 0 {
		if c, ok := lookupCommand(args[0]); ok {
			cmd, rest = c.run, args[1:]
		} else if args[0] != "" && args[0][0] != '-' {
			fmt.Fprintf(stderr, "pbx-agent: unknown command %q (try: %s; `pbx-agent help` explains each)\n", args[0], commandNames())
			return 2
		}
	}
	if err := cmd(ctx, rest, stdout, stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		var ue usageError
		if errors.As(err, &ue) {
			fmt.Fprintf(stderr, "pbx-agent: %v\n", err)
			return 2
		}
		fmt.Fprintf(stderr, "pbx-agent: %v\n", err)
		return 1
	}
	return 0
}

func commandNames() string {
	names := make([]string, 0, 8)
	for _, c := range commands() {
		names = append(names, c.name)
	}
	return strings.Join(names, ", ")
}

// usageError marks bad command-line input (exit code 2).
type usageError struct{ error }

// parseFlags parses a command's flags; a bad flag is a usage error (exit 2),
// -h/--help is flag.ErrHelp (exit 0).
func parseFlags(fs *flag.FlagSet, args []string) error {
	err := fs.Parse(args)
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return err
	}
	return usageError{err}
}

// addSetFlag adds -set key=value (repeatable): a config key's value that
// replaces the file's.
func addSetFlag(fs *flag.FlagSet, into map[string]string) {
	fs.Func("set", "override a config key: -set key=value (repeatable)", func(s string) error {
		k, v, ok := strings.Cut(s, "=")
		if !ok {
			return fmt.Errorf("want key=value, got %q", s)
		}
		into[strings.TrimSpace(k)] = strings.TrimSpace(v)
		return nil
	})
}

// newFlagSet is a subcommand's flag set whose -h prints its synopsis first.
func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		if c, ok := lookupCommand(name); ok {
			fmt.Fprintf(stderr, "usage: %s\n\n%s.\n", strings.TrimSpace("pbx-agent "+c.name+" "+c.args), upperFirst(c.summary))
		}
		if hasFlags(fs) {
			fmt.Fprintln(stderr, "\nflags:")
			fs.PrintDefaults()
		}
	}
	return fs
}

func hasFlags(fs *flag.FlagSet) bool {
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	return n > 0
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

func runVersion(_ context.Context, args []string, stdout, stderr io.Writer) error {
	if err := parseFlags(newFlagSet("version", stderr), args); err != nil {
		return err
	}
	yes, no := codec.Decodable()
	_, err := fmt.Fprintf(stdout, "pbx-agent %s\ndecodes: %s\nsilent: %s\n", version, strings.Join(yes, " "), strings.Join(no, " "))
	return err
}

func runGenAESKeyCmd(_ context.Context, args []string, stdout, stderr io.Writer) error {
	if err := parseFlags(newFlagSet("gen-aes-key", stderr), args); err != nil {
		return err
	}
	return runGenAESKey(stdout)
}

// runHelp is `pbx-agent help [COMMAND]`: the overview (to stdout), or the
// command's own -h text.
func runHelp(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("help", stderr)
	man := fs.Bool("man", false, "print the manual page (roff), made from this help text")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *man {
		return writeManPage(ctx, stdout)
	}
	if fs.NArg() == 0 {
		return writeUsage(stdout)
	}
	if fs.Arg(0) == "daemon" {
		_, err := parseDaemonFlags([]string{"-h"}, stdout)
		return err
	}
	c, ok := lookupCommand(fs.Arg(0))
	if !ok {
		return usageError{fmt.Errorf("help: unknown command %q (try: %s)", fs.Arg(0), commandNames())}
	}
	return c.run(ctx, []string{"-h"}, stdout, stdout)
}

// writeUsage is the overview `pbx-agent -h` and `pbx-agent help` print.
func writeUsage(w io.Writer) error {
	var b strings.Builder
	b.WriteString("usage: pbx-agent [flags]              run the agent (flags below; `pbx-agent help daemon`)\n")
	b.WriteString("       pbx-agent COMMAND [flags] [args]\n\n")
	b.WriteString("pbx-agent watches calls beside an Asterisk PBX: SIP/RTP on the wire and Asterisk's AMI/ARI,\n")
	b.WriteString("joined by Call-ID; VoIPmonitor-compatible CDRs in MySQL, VoIPmonitor's manager API (5029),\n")
	b.WriteString("web APIs and a live calls dashboard with listening (http://127.0.0.1:8080/).\n")
	b.WriteString("With no config file and no interface it replays a bundled call, so it can be tried anywhere.\n\n")
	b.WriteString("commands:\n")
	for _, c := range commands() {
		fmt.Fprintf(&b, "  %-13s %s\n", c.name, c.summary)
	}
	b.WriteString("\n`pbx-agent COMMAND -h` shows a command's flags. Exit codes: 0 success, 1 failure, 2 bad command line.\n")
	_, err := io.WriteString(w, b.String())
	return err
}
