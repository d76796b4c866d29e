package parity

import "errors"

// ErrRef is returned for a reference file that cannot be read.
var ErrRef = errors.New("parity: bad reference file")
