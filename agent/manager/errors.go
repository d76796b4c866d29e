package manager

import "errors"

// Sentinel errors. Callers test them with errors.Is.
var (
	// ErrServerClosed is returned by Serve and ListenAndServe after Shutdown or Close.
	ErrServerClosed = errors.New("manager: server closed")
	// ErrCallEnded is returned by AudioStream.ReadPCM once the call has ended.
	ErrCallEnded = errors.New("manager: call ended")
	// ErrRequestTooLarge reports a request longer than Config.MaxRequestBytes.
	ErrRequestTooLarge = errors.New("manager: request too large")
	// ErrRequestTimeout reports a request that was not complete within Config.ReadTimeout.
	ErrRequestTimeout = errors.New("manager: request not complete in time")
	// ErrSocketRunning is returned by StartSocket when a runtime socket is already open.
	ErrSocketRunning = errors.New("manager: socket file already running")
	// ErrSocketNotRunning is returned by StopSocket when no runtime socket is open.
	ErrSocketNotRunning = errors.New("manager: socket file not running")
	// ErrSocketConfigured is returned by StopSocket for the socket set by `managersocket`.
	ErrSocketConfigured = errors.New("manager: socket file set by the configuration")
	// ErrNotSocket refuses to replace an existing path that is not a unix socket.
	ErrNotSocket = errors.New("manager: path exists and is not a socket")
	// ErrTooManyListeners refuses a new listen id when every listening slot
	// (all calls together) is taken.
	ErrTooManyListeners = errors.New("manager: too many listeners")
	// ErrTooManyTerms refuses a listcalls / listregisters request with more
	// distinct filters or states than a row is worth testing against.
	ErrTooManyTerms = errors.New("manager: too many filter terms")
	// ErrSocketPath refuses a `manager_file start` path outside the temp
	// directory or one that exists.
	ErrSocketPath = errors.New("manager: socket path refused")
)
