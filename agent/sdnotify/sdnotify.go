// Package sdnotify implements systemd's sd_notify protocol: one datagram of
// newline-separated KEY=VALUE assignments sent to the unix socket named by
// $NOTIFY_SOCKET (a path, or an abstract name starting with '@'). Without
// $NOTIFY_SOCKET (not started by systemd with Type=notify) every call is a
// no-op.
package sdnotify

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// ErrSend wraps a failure to reach the notify socket.
var ErrSend = errors.New("sdnotify: send failed")

// Standard states (sd_notify(3)).
const (
	StateReady     = "READY=1"
	StateStopping  = "STOPPING=1"
	StateReloading = "RELOADING=1"
)

// Notifier sends states to one socket. The zero value (no socket) does nothing.
type Notifier struct {
	socket string
}

// FromEnv returns a Notifier for $NOTIFY_SOCKET ("" → a no-op notifier).
func FromEnv() *Notifier { return New(os.Getenv("NOTIFY_SOCKET")) }

// New returns a Notifier for socket ("" → no-op).
func New(socket string) *Notifier { return &Notifier{socket: socket} }

// Enabled reports whether a notify socket is configured.
func (n *Notifier) Enabled() bool { return n != nil && n.socket != "" }

// Notify sends the given assignments in one datagram.
func (n *Notifier) Notify(states ...string) error {
	if !n.Enabled() || len(states) == 0 {
		return nil
	}
	name := n.socket
	if name[0] == '@' {
		name = "\x00" + name[1:]
	}
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		return fmt.Errorf("%w: %s: %w", ErrSend, n.socket, err)
	}
	defer c.Close()
	msg := strings.Join(states, "\n")
	if _, err := c.Write([]byte(msg)); err != nil {
		return fmt.Errorf("%w: %s: %w", ErrSend, n.socket, err)
	}
	return nil
}

// Ready tells systemd start-up is complete (Type=notify units become active).
func (n *Notifier) Ready() error { return n.Notify(StateReady, status("running")) }

// Stopping tells systemd the service is shutting down.
func (n *Notifier) Stopping() error { return n.Notify(StateStopping, status("stopping")) }

// Reloading tells systemd a reload (SIGHUP) started; call Ready when done.
// MONOTONIC_USEC is included as Type=notify-reload requires.
func (n *Notifier) Reloading() error {
	return n.Notify(StateReloading, "MONOTONIC_USEC="+strconv.FormatInt(monotonicUsec(), 10), status("reloading"))
}

// Status sets the free-form status line `systemctl status` shows.
func (n *Notifier) Status(s string) error { return n.Notify(status(s)) }

func status(s string) string {
	return "STATUS=" + strings.ReplaceAll(s, "\n", " ")
}

func monotonicUsec() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return time.Now().UnixMicro()
	}
	return ts.Sec*1_000_000 + ts.Nsec/1_000
}
