package main

import (
	"context"
	"fmt"
	"io"

	"pbx-agent/agent/config"
)

// runCheckConfig validates a config file without starting anything; every
// problem is reported with file:line and a hint.
func runCheckConfig(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("check-config", stderr)
	path := fs.String("config", defaultConfigPath, "config file to check")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := config.Check(*path, nil)
	if err != nil {
		return err
	}
	for _, w := range cfg.Warnings {
		fmt.Fprintf(stdout, "warning: %s\n", w)
	}
	if w := cfg.NoEffectWarning(); w != "" {
		fmt.Fprintf(stdout, "warning: %s\n", w)
	}
	_, err = fmt.Fprintf(stdout, "%s: OK\n", *path)
	return err
}
