package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"pbx-agent/agent/config"
)

// runCheckConfig validates a config file without starting anything; every
// problem is reported with file:line and a hint.
func runCheckConfig(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("check-config", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", defaultConfigPath, "config file to check")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := config.Check(*path, nil)
	if err != nil {
		return err
	}
	for _, ign := range cfg.Ignored {
		fmt.Fprintf(stdout, "warning: %s: accepted, no effect in pbx-agent\n", ign)
	}
	_, err = fmt.Fprintf(stdout, "%s: OK\n", *path)
	return err
}
