package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"time"

	"golang.org/x/sys/unix"

	"pbx-agent/sniffer/capture"
)

// runInject is the built-in injector: it writes the file's frames (again
// from the start at its end) to an AF_PACKET socket bound to an interface,
// pps frames a second for the given time, and prints "sent N".
func runInject(args []string) error {
	fs := flag.NewFlagSet("inject", flag.ContinueOnError)
	ifname := fs.String("i", "", "interface")
	pps := fs.Int("pps", 10000, "frames per second")
	dur := fs.Duration("duration", 10*time.Second, "injection time")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 || *ifname == "" || *pps <= 0 {
		return errors.New("usage: vethbench inject -i IFACE -pps N -duration D FILE")
	}
	ifi, err := net.InterfaceByName(*ifname)
	if err != nil {
		return err
	}
	// Protocol 0: the socket only sends (it receives nothing).
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, 0)
	if err != nil {
		return fmt.Errorf("AF_PACKET socket: %w", err)
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Ifindex: ifi.Index}); err != nil {
		return fmt.Errorf("bind %s: %w", *ifname, err)
	}
	n, err := inject(context.Background(), fd, fs.Arg(0), *pps, *dur)
	fmt.Printf("sent %d\n", n)
	return err
}

// inject paces the frames by the clock: it sends what is due, then sleeps
// a little; a frame the kernel refuses for lack of buffers is sent again.
func inject(ctx context.Context, fd int, path string, pps int, dur time.Duration) (uint64, error) {
	src, err := capture.OpenFile(path)
	if err != nil {
		return 0, err
	}
	defer func() { src.Close() }()
	var sent uint64
	start := time.Now()
	total := uint64(float64(pps) * dur.Seconds())
	for sent < total {
		if err := ctx.Err(); err != nil {
			return sent, err
		}
		due := min(total, uint64(float64(pps)*time.Since(start).Seconds()))
		if sent >= due {
			time.Sleep(100 * time.Microsecond)
			continue
		}
		for sent < due {
			data, _, err := src.ReadPacket()
			if errors.Is(err, io.EOF) {
				src.Close()
				if src, err = capture.OpenFile(path); err != nil {
					return sent, err
				}
				continue
			}
			if err != nil {
				return sent, err
			}
			for {
				_, err = unix.Write(fd, data)
				if !errors.Is(err, unix.ENOBUFS) && !errors.Is(err, unix.EAGAIN) {
					break
				}
				time.Sleep(50 * time.Microsecond)
			}
			if err != nil {
				return sent, fmt.Errorf("send: %w", err)
			}
			sent++
		}
	}
	return sent, nil
}
