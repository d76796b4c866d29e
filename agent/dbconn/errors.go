package dbconn

import "errors"

var (
	// ErrNoNode is returned when no node of a list answered (each node's
	// error is joined to it).
	ErrNoNode = errors.New("dbconn: no MySQL node reachable")
	// ErrAddress is returned for an empty or malformed node list.
	ErrAddress = errors.New("dbconn: bad MySQL node address")
	// ErrNotReady is returned for a Galera node that answers but is not a
	// synced member of the primary component (wsrep_ready = OFF).
	ErrNotReady = errors.New("dbconn: Galera node not ready")
)
