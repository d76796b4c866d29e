package simulate

import "errors"

// Sentinel errors; callers test them with errors.Is.
var (
	// ErrOption reports an invalid Options field.
	ErrOption = errors.New("simulate: invalid option")
	// ErrTruthFormat reports a malformed truth TSV line.
	ErrTruthFormat = errors.New("simulate: malformed truth TSV")
)
