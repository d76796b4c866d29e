package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"pbx-agent/agent/config"
	"pbx-agent/agent/manager/client"
	"pbx-agent/agent/manager/wire"
)

// runManagerClient is `pbx-agent manager [-h HOST] [-p PORT] [-U SOCKET] [-a]
// COMMAND...`: one manager API exchange (the GUI's send_manager_cmd). Host,
// port and the AES key default to the config file's managerip, managerport,
// manager_aes_key and manager_aes_iv.
func runManagerClient(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	flags := newFlagSet("manager", stderr)
	cfgPath := flags.String("config", config.DefaultPath, "config file to take managerip/managerport/manager_aes_key/manager_aes_iv from")
	host := flags.String("h", "", "manager host (default: managerip from the config, else 127.0.0.1); -h alone or --help shows this help")
	flags.StringVar(host, "host", "", "same as -h HOST")
	port := flags.Int("p", 0, "manager TCP port (default: managerport from the config, else 5029)")
	sock := flags.String("U", "", "unix socket path instead of TCP (plaintext is always accepted there)")
	useAES := flags.Bool("a", false, "encrypt with the manager AES key")
	keyB64 := flags.String("key", "", "manager_aes_key (base64) for -a, overriding the config")
	ivB64 := flags.String("iv", "", "manager_aes_iv (base64) for -a, overriding the config")
	timeout := flags.Duration("timeout", 60*time.Second, "whole exchange timeout")
	// -h is VoIPmonitor's host flag, kept for scripts; alone (no host after
	// it) it asks for help as everywhere else.
	if len(args) > 0 && (args[len(args)-1] == "-h" || args[len(args)-1] == "--h") {
		flags.Usage()
		return flag.ErrHelp
	}
	if err := parseFlags(flags, args); err != nil {
		return err
	}
	if flags.NArg() == 0 {
		flags.Usage()
		return usageError{errors.New("manager: no command given")}
	}
	explicitCfg := false
	flags.Visit(func(f *flag.Flag) { explicitCfg = explicitCfg || f.Name == "config" })
	cfg, err := config.Load(*cfgPath, nil)
	switch {
	case err == nil:
	case !explicitCfg && (errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission)):
		cfg = config.Default() // no readable default config: flags and built-in defaults
	default:
		return fmt.Errorf("manager: %w", err)
	}
	network, addr := "unix", *sock
	if addr == "" {
		h, p := cfg.ManagerIP, cfg.ManagerPort
		if *host != "" {
			h = *host
		}
		if *port != 0 {
			p = *port
		}
		if h == "" || h == "0.0.0.0" {
			h = "127.0.0.1"
		}
		network, addr = "tcp", net.JoinHostPort(h, strconv.Itoa(p))
	}
	var key *wire.AESKey
	if *useAES {
		kb, ib := cfg.ManagerAESKey, cfg.ManagerAESIV
		if *keyB64 != "" {
			kb = *keyB64
		}
		if *ivB64 != "" {
			ib = *ivB64
		}
		if kb == "" || ib == "" {
			return usageError{errors.New("manager: -a needs manager_aes_key and manager_aes_iv (config or -key/-iv)")}
		}
		k, err := wire.ParseAESKey(kb, ib)
		if err != nil {
			return usageError{err}
		}
		key = &k
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	reply, err := client.Exchange(ctx, network, addr, strings.Join(flags.Args(), " "), key)
	if err != nil {
		return dialHint(err, network, addr, cfgPath, *sock != "")
	}
	if string(reply) == wire.ReplyUnknownCommand {
		return fmt.Errorf("manager: %q: unknown manager command (the reply was %q)", flags.Arg(0), strings.TrimSpace(string(reply)))
	}
	_, err = stdout.Write(reply)
	return err
}

// dialHint turns "dial tcp A: dial tcp A: connect: connection refused" into
// one sentence naming the address once, the cause, and what to change.
func dialHint(err error, network, addr string, cfgPath *string, viaSocket bool) error {
	var op *net.OpError
	if !errors.As(err, &op) || op.Op != "dial" {
		return err
	}
	cause := op.Err
	var sys *os.SyscallError
	if errors.As(cause, &sys) {
		cause = sys.Err
	}
	where := "managerip/managerport in " + *cfgPath + ", or -h HOST -p PORT"
	if viaSocket {
		where = "managersocket in " + *cfgPath + ", or -U PATH"
	}
	return fmt.Errorf("manager: cannot connect to the manager API at %s %s: %v (is pbx-agent running? the address is %s)", network, addr, cause, where)
}

// runGenAESKey is `pbx-agent gen-aes-key`: a fresh manager key and IV, as
// config lines (the GUI's `run.php generate_aes_key`).
func runGenAESKey(stdout io.Writer) error {
	k, err := wire.GenerateAESKey(rand.Reader)
	if err != nil {
		return err
	}
	key, iv := k.Base64()
	_, err = fmt.Fprintf(stdout, "manager_aes_key = %s\nmanager_aes_iv = %s\n", key, iv)
	return err
}
