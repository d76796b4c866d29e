package discover

import "errors"

// Sentinel errors; test with errors.Is. Discovery problems are joined into
// the error Discover returns; the Result is usable all the same.
var (
	// ErrUnreadable marks an Asterisk config file that exists but cannot be
	// read (usually permissions: manager.conf is mode 640, group asterisk).
	ErrUnreadable = errors.New("discover: config file not readable")
	// ErrNotFound marks a missing file that discovery needs (manager.conf).
	ErrNotFound = errors.New("discover: config file not found")
	// ErrConfig marks an Asterisk config file that does not parse.
	ErrConfig = errors.New("discover: bad Asterisk config")
	// ErrAMI marks an AMI setup the agent cannot use (disabled, no fitting user).
	ErrAMI = errors.New("discover: AMI not usable")
	// ErrInterface marks a SIP bind address no local interface carries.
	ErrInterface = errors.New("discover: no interface for bind address")
)
