// Package defaults fills the unset fields of a component's configuration, so
// that a constructor states each default on one line:
//
//	defaults.Positive(&c.WriteTimeout, 5*time.Second)
//	defaults.Unset(&c.Prefix, "pbxagent-tap-")
package defaults

// Number is what Positive takes: sizes, counts, durations and rates.
type Number interface {
	~int | ~int8 | ~int16 | ~int32 | ~int64 |
		~uint | ~uint8 | ~uint16 | ~uint32 | ~uint64 |
		~float32 | ~float64
}

// Positive sets *p to v when *p is zero or negative: the field was not set, or
// set to a value that cannot work.
func Positive[T Number](p *T, v T) {
	if *p <= 0 {
		*p = v
	}
}

// Unset sets *p to v when *p is its type's zero value. Use it where a
// negative number keeps a meaning (such as "off") or for strings.
func Unset[T comparable](p *T, v T) {
	var zero T
	if *p == zero {
		*p = v
	}
}
