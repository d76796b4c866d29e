// Command pbx-agent sniffs SIP/RTP beside an Asterisk PBX, ties the calls to
// Asterisk's channels, stores VoIPmonitor-compatible CDRs and serves
// VoIPmonitor's manager and web APIs. See README.md and ../shared/CLI.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

// command is one subcommand: it owns its flags and returns an error instead
// of exiting, so main is the only place that picks an exit code.
type command func(ctx context.Context, args []string, stdout, stderr io.Writer) error

func commands() map[string]command {
	return map[string]command{
		"replay":  runReplay,
		"gen":     runGen,
		"manager": runManagerClient,
		"gen-aes-key": func(_ context.Context, _ []string, stdout, _ io.Writer) error {
			return runGenAESKey(stdout)
		},
		"check-config": runCheckConfig,
		"doctor":       runDoctor,
		"version": func(_ context.Context, _ []string, stdout, _ io.Writer) error {
			_, err := fmt.Fprintf(stdout, "pbx-agent %s\n", version)
			return err
		},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// run dispatches to a subcommand, or to the daemon when the first argument is
// a flag or absent. It returns the process exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cmd, rest := runDaemon, args
	if len(args) > 0 {
		if c, ok := commands()[args[0]]; ok {
			cmd, rest = c, args[1:]
		} else if args[0] != "" && args[0][0] != '-' {
			fmt.Fprintf(stderr, "pbx-agent: unknown command %q (try: %s)\n", args[0], commandNames())
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
	s := ""
	for name := range commands() {
		if s != "" {
			s += ", "
		}
		s += name
	}
	return s
}

// usageError marks bad command-line input (exit code 2).
type usageError struct{ error }

// sigContext is cancelled by SIGINT or SIGTERM (a child process in tests
// uses it as main does).
func sigContext() context.Context {
	ctx, _ := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	return ctx
}
