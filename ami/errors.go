package ami

import (
	"errors"
	"fmt"
)

// Sentinel errors; test with errors.Is.
var (
	// ErrProtocol marks bytes that are not valid AMI framing (see ProtocolError).
	ErrProtocol = errors.New("ami: protocol error")
	// ErrBanner is returned when the server does not greet with "Asterisk Call Manager/".
	ErrBanner = errors.New("ami: bad banner")
	// ErrAuth is returned when Login is refused.
	ErrAuth = errors.New("ami: authentication failed")
	// ErrAction wraps a "Response: Error" answer (see ActionError).
	ErrAction = errors.New("ami: action failed")
	// ErrClosed is returned by actions on a closed or lost connection.
	ErrClosed = errors.New("ami: connection closed")
	// ErrNotConnected is returned by Client.Do while no session is up.
	ErrNotConnected = errors.New("ami: not connected")
	// ErrListTooLong is returned by a list action whose answer passed
	// ConnConfig.MaxListItems items.
	ErrListTooLong = errors.New("ami: list answer too long")
	// ErrBufferFull is returned by Parser.Write when unparsed data exceeds its bound.
	ErrBufferFull = errors.New("ami: parser buffer full")
)

// ProtocolError describes one malformed packet. The parser has already
// skipped it; the caller counts it and reads on.
type ProtocolError struct {
	Reason string
	Line   string // the offending line, truncated
}

func (e *ProtocolError) Error() string {
	if e.Line == "" {
		return fmt.Sprintf("%v: %s", ErrProtocol, e.Reason)
	}
	return fmt.Sprintf("%v: %s: %q", ErrProtocol, e.Reason, e.Line)
}

func (e *ProtocolError) Unwrap() error { return ErrProtocol }

// ActionError is a "Response: Error" (or other non-success) answer.
type ActionError struct {
	Action   string
	Response string
	Message  string
}

func (e *ActionError) Error() string {
	return fmt.Sprintf("%v: %s: %s: %s", ErrAction, e.Action, e.Response, e.Message)
}

func (e *ActionError) Unwrap() error { return ErrAction }
