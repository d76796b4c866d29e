// Package opt fills the zero options of a config with their defaults,
// one line per option instead of an if-block each.
package opt

import "cmp"

// Default sets *p to d when *p is zero or negative (for a string: empty).
// Options where a negative value means something (off) keep their own
// check.
func Default[T cmp.Ordered](p *T, d T) {
	var zero T
	if *p <= zero {
		*p = d
	}
}
