package spool

import (
	"errors"
	"io/fs"
)

// Sentinel errors; callers test them with errors.Is.
var (
	// ErrConfig reports an invalid option value.
	ErrConfig = errors.New("spool: invalid option")
	// ErrLinkMismatch reports a packet whose link type differs from the
	// one its call's pcap was started with (the packet is not stored).
	ErrLinkMismatch = errors.New("spool: link type differs from the file's")
	// ErrPcap reports a pcap file the spool cannot merge.
	ErrPcap = errors.New("spool: bad pcap")
	// ErrClosed reports a call asked for after Close.
	ErrClosed = errors.New("spool: closed")
	// ErrRunning is returned by a second Run.
	ErrRunning = errors.New("spool: already running")
	// ErrNotRegular reports a spool path Open refuses: a symlink, a
	// directory or device, or a name that leaves the spool. It matches
	// fs.ErrNotExist too (errors.Is), so it is answered as a missing file.
	ErrNotRegular error = notRegularError{}
)

type notRegularError struct{}

func (notRegularError) Error() string { return "spool: not a regular file" }

// Is makes ErrNotRegular match fs.ErrNotExist.
func (notRegularError) Is(target error) bool { return target == fs.ErrNotExist }
