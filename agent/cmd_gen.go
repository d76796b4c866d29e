package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"pbx-agent/sniffer/simulate"
)

// unitFlag is a duration given as a plain number of units ("60", "1.5")
// or as a Go duration ("90s", "2m").
type unitFlag struct {
	d    *time.Duration
	unit time.Duration
	want string // the error's hint: "seconds or a duration like 90s"
}

// secondsFlag is a unitFlag in seconds, msFlag in milliseconds.
func secondsFlag(d *time.Duration) unitFlag {
	return unitFlag{d, time.Second, "seconds or a duration like 90s"}
}

func msFlag(d *time.Duration) unitFlag {
	return unitFlag{d, time.Millisecond, "milliseconds or a duration like 4ms"}
}

func (f unitFlag) String() string {
	if f.d == nil {
		return ""
	}
	return strconv.FormatFloat(float64(*f.d)/float64(f.unit), 'f', -1, 64)
}

func (f unitFlag) Set(s string) error {
	if v, err := strconv.ParseFloat(s, 64); err == nil {
		*f.d = time.Duration(v * float64(f.unit))
		return nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("want %s: %q", f.want, s)
	}
	*f.d = d
	return nil
}

// runGen implements `pbx-agent gen`: write a synthetic SIP/RTP capture (and
// optionally its ground truth as TSV), then print a one-line summary to stderr.
func runGen(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("gen", stderr)
	var (
		o         simulate.Options
		out       string
		truthPath string
		start     string
		vlan      uint
	)
	o.Duration = 10 * time.Second
	fs.StringVar(&out, "o", "", "output pcap file (\"-\" = stdout); required")
	fs.StringVar(&truthPath, "truth", "", "write the ground truth (streams, calls, REGISTERs) as TSV to this file")
	fs.IntVar(&o.Calls, "calls", 10, "number of calls")
	fs.IntVar(&o.Concurrency, "concurrency", 0, "most calls active at once (0 = all)")
	fs.Var(secondsFlag(&o.Duration), "duration", "RTP seconds per answered call (or a duration like 90s)")
	fs.Float64Var(&o.CPS, "cps", 10, "call attempts per second")
	fs.StringVar(&o.Codec, "codec", simulate.CodecPCMU, strings.Join(simulate.Codecs, ", ")+" (ilbc: 700/1300 Hz tones only)")
	fs.Float64Var(&o.Loss, "loss", 0, "percent of RTP packets lost independently")
	fs.Float64Var(&o.BurstRate, "burst", 0, "percent of RTP packets that start a loss burst")
	fs.IntVar(&o.BurstLen, "burst-len", 5, "RTP packets lost per burst")
	fs.Var(msFlag(&o.Jitter), "jitter", "max extra arrival delay of RTP packets, in ms")
	fs.Int64Var(&o.Seed, "seed", 1, "random seed: the same seed gives the same bytes")
	fs.StringVar(&start, "start", "2024-01-01T00:00:00Z", "time of the first packet (RFC 3339)")
	fs.UintVar(&vlan, "vlan", 0, "802.1Q VLAN id on every frame (0 = none)")
	fs.IntVar(&o.MTU, "mtu", 1500, "IP MTU: bigger UDP SIP is IPv4-fragmented, TCP SIP is segmented")
	fs.StringVar(&o.Transport, "transport", simulate.TransportUDP, "SIP transport: udp, tcp or sctp")
	fs.StringVar(&o.Encap, "encap", simulate.EncapNone, "wrap every frame: "+strings.Join(simulate.Encaps, ", ")+" (default none)")
	fs.BoolVar(&o.TCPCoalesce, "tcp-coalesce", false, "with tcp, send some PBX responses two per segment")
	fs.BoolVar(&o.IPv6, "ipv6", false, "use IPv6 addresses")
	fs.Float64Var(&o.Busy, "busy", 0, "percent of calls answered 486 Busy Here")
	fs.Float64Var(&o.Cancelled, "cancel", 0, "percent of calls cancelled by the caller (487)")
	fs.Float64Var(&o.Unanswered, "unanswered", 0, "percent of calls that ring out (480)")
	fs.IntVar(&o.Registers, "registers", 0, "number of REGISTER transactions")
	fs.Float64Var(&o.RegisterAuth, "register-auth", 0, "percent of REGISTERs challenged 401 then accepted")
	fs.Float64Var(&o.RegisterForbidden, "register-forbidden", 0, "percent of REGISTERs challenged 401 then refused 403")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{fmt.Errorf("gen: %w", err)}
	}
	if out == "" || fs.NArg() > 0 {
		fs.Usage()
		return usageError{fmt.Errorf("gen: -o OUT.pcap is required and no positional arguments are taken (got %q)", fs.Args())}
	}
	if vlan > 4094 {
		return usageError{fmt.Errorf("gen: -vlan %d > 4094", vlan)}
	}
	o.VLAN = uint16(vlan)
	st, err := time.Parse(time.RFC3339Nano, start)
	if err != nil {
		return usageError{fmt.Errorf("gen: -start: %w", err)}
	}
	o.Start = st

	begun := time.Now()
	var truth *simulate.Truth
	if out == "-" {
		truth, err = simulate.WritePcap(ctx, stdout, o)
	} else {
		err = writeAtomically(out, func(w io.Writer) error {
			var werr error
			truth, werr = simulate.WritePcap(ctx, w, o)
			return werr
		})
	}
	if errors.Is(err, simulate.ErrOption) {
		return usageError{fmt.Errorf("gen: %w", err)}
	}
	if err != nil {
		return fmt.Errorf("gen: %w", err)
	}
	if truthPath != "" {
		if err := writeAtomically(truthPath, truth.WriteTSV); err != nil {
			return fmt.Errorf("gen: truth: %w", err)
		}
	}
	elapsed := time.Since(begun)
	var sent, dropped int
	for _, s := range truth.Streams {
		sent += s.Sent
		dropped += s.Dropped
	}
	fmt.Fprintf(stderr, "gen: %s: %d packets (%d SIP messages, %d RTP, %d RTP dropped), %d calls, %d streams, %d REGISTERs in %v (%.0f packets/s)\n",
		out, truth.Frames, truth.SIP, sent-dropped, dropped, len(truth.Calls), len(truth.Streams), len(truth.Registers),
		elapsed.Round(time.Millisecond), float64(truth.Frames)/max(elapsed.Seconds(), 1e-9))
	return nil
}

// writeAtomically writes path through a temporary file in the same directory
// that is renamed into place only when write succeeds.
func writeAtomically(path string, write func(io.Writer) error) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+strings.TrimPrefix(base, ".")+".tmp*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if err := write(f); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Chmod(f.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
