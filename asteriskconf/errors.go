package asteriskconf

import (
	"errors"
	"fmt"
)

// Sentinel errors; test with errors.Is.
var (
	// ErrSyntax marks a line Asterisk itself would refuse to load.
	ErrSyntax = errors.New("asteriskconf: syntax error")
	// ErrInclude marks an #include whose file is missing or unreadable, or an include loop.
	ErrInclude = errors.New("asteriskconf: include failed")
	// ErrInherit marks a [name](tmpl) or [name](+) naming a section that does not exist.
	ErrInherit = errors.New("asteriskconf: inheritance from unknown section")
	// ErrValue marks an option value the manager.conf model cannot use.
	ErrValue = errors.New("asteriskconf: bad value")
	// ErrNoUser is returned by SelectUser when no manager.conf user fits.
	ErrNoUser = errors.New("asteriskconf: no usable manager user")
)

// PosError is an error tied to a line of a config file, printed like a
// compiler message: "manager.conf:12: message".
type PosError struct {
	File string
	Line int
	Msg  string
	Err  error // sentinel (ErrSyntax, ErrInclude, ...) or an underlying cause
}

func (e *PosError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.File, e.Msg)
}

func (e *PosError) Unwrap() error { return e.Err }

func posErr(file string, line int, sentinel error, format string, args ...any) *PosError {
	return &PosError{File: file, Line: line, Msg: fmt.Sprintf(format, args...), Err: sentinel}
}
