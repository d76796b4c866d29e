package portowner

import "errors"

// ErrNotFound: nothing visible listens on the port (or its owner's fds
// cannot be read).
var ErrNotFound = errors.New("portowner: no visible process listens on the port")
