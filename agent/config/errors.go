package config

import (
	"errors"
	"fmt"
)

var (
	// ErrUnknownKey is reported for a key the agent does not know.
	ErrUnknownKey = errors.New("config: unknown key")
	// ErrBadValue is reported for a value that does not parse or is out of range.
	ErrBadValue = errors.New("config: bad value")
	// ErrRead wraps I/O and syntax failures reading the file.
	ErrRead = errors.New("config: cannot read")
	// ErrCheck is reported by Check for settings that parse but cannot work
	// on this machine (unreadable files, unwritable directories).
	ErrCheck = errors.New("config: check failed")
	// ErrZone is a timezone value naming no zone (no such zoneinfo file,
	// not a zoneinfo file, unknown zone name).
	ErrZone = errors.New("config: unknown time zone")
)

// Error is one problem in a config source, located like a compiler error:
// "pbx-agent.conf:12: mysqlport: bad value "abc": want a TCP port 1-65535".
type Error struct {
	File string // file name, or "flag" for a command-line override
	Line int    // 1-based; 0 when unknown
	Key  string
	Err  error  // ErrUnknownKey, ErrBadValue, ErrCheck
	Msg  string // what is wrong
	Hint string // how to fix it; may be empty
}

func (e *Error) Error() string {
	loc := e.File
	if e.Line > 0 {
		loc = fmt.Sprintf("%s:%d", e.File, e.Line)
	}
	s := fmt.Sprintf("%s: %s: %s", loc, e.Key, e.Msg)
	if e.Hint != "" {
		s += " (" + e.Hint + ")"
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }
