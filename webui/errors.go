package webui

import "errors"

// Sentinel errors. Callers test them with errors.Is.
var (
	// ErrServerClosed is returned by Server.Serve after Shutdown.
	ErrServerClosed = errors.New("webui: server closed")
	// ErrAuth reports a missing or wrong user/password or session.
	ErrAuth = errors.New("webui: authentication failed")
	// ErrThrottled reports too many failed logins for a user or address.
	ErrThrottled = errors.New("webui: too many failed logins, try again later")
	// ErrForbidden reports a user without the right the request needs, or
	// an address refused by the user's permit/deny.
	ErrForbidden = errors.New("webui: forbidden")
	// ErrBadRequest reports a bad parameter.
	ErrBadRequest = errors.New("webui: bad request")
	// ErrNotFound reports an unknown CDR, call or file.
	ErrNotFound = errors.New("webui: not found")
	// ErrUnavailable reports a feature whose backend (database, spool, call
	// table) was not configured.
	ErrUnavailable = errors.New("webui: not available")
	// ErrBadToken reports a share link whose signature or expiry is wrong.
	ErrBadToken = errors.New("webui: invalid or expired share link")
	// ErrBadCapture reports a spool file that is not a readable pcap.
	ErrBadCapture = errors.New("webui: bad capture file")
	// ErrUsersFile reports a users_file line the agent cannot use.
	ErrUsersFile = errors.New("webui: bad users_file")
)
