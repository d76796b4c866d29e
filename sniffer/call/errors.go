package call

import "errors"

// ErrNoCall: no active call has that callreference.
var ErrNoCall = errors.New("call: call not found")
