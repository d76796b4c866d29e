package recording

import "errors"

// Sentinel errors; test with errors.Is.
var (
	// ErrPartial: the sniffer was paused but some Asterisk-side action failed;
	// the Result says which (the error joins their errors).
	ErrPartial = errors.New("recording: some actions failed")
)
