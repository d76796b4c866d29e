package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"pbx-agent/agent/doctor"
)

// errDoctorFailed makes `pbx-agent doctor` exit non-zero when a check fails.
var errDoctorFailed = errors.New("doctor: some checks failed")

// runDoctor checks the installation and prints one line per finding with a
// fix hint; it returns an error (exit code 1) when any check fails.
func runDoctor(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("doctor", stderr)
	path := fs.String("config", defaultConfigPath, "config file to check")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	root := fs.String("root", "/", "file-system root for Asterisk's config (a scratch install)")
	timeout := fs.Duration("timeout", 3*time.Second, "timeout of each network check")
	set := map[string]string{}
	addSetFlag(fs, set) // as the daemon's: check the config it runs with
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("doctor: unexpected argument %q", fs.Arg(0))}
	}
	env := doctor.Env{ConfigPath: *path, Timeout: *timeout, FS: os.DirFS(*root), Flags: set}
	if _, err := os.Stat(*path); *path == "" || (*path == defaultConfigPath && errors.Is(err, os.ErrNotExist)) {
		// No file: the embedded default, as the daemon runs it.
		cfg, _, err := loadConfig("", set, slog.New(slog.DiscardHandler))
		if err != nil {
			return err
		}
		env.Config = cfg
	}
	rep := doctor.Run(ctx, env)
	var err error
	if *asJSON {
		err = rep.WriteJSON(stdout)
	} else {
		err = rep.WriteText(stdout)
	}
	if err != nil {
		return err
	}
	if !rep.OK() {
		return fmt.Errorf("%w (%d)", errDoctorFailed, rep.Fails)
	}
	return nil
}
