package cdrquery

import (
	"errors"
	"fmt"
)

// Sentinel errors. Callers test them with errors.Is.
var (
	// ErrBadParam is wrapped by every *ParamError.
	ErrBadParam = errors.New("cdrquery: bad parameter")
	// ErrNoDate reports a LISTING request without fdatefrom or fdateto.
	ErrNoDate = errors.New("cdrquery: fdatefrom or fdateto is required")
	// ErrBadObject reports a cdr_filter value that is not a {key:value} object.
	ErrBadObject = errors.New("cdrquery: bad filter object")
)

// ParamError names the parameter whose value was refused and why.
type ParamError struct {
	Param  string
	Value  string
	Reason string
}

func (e *ParamError) Error() string {
	v := e.Value
	if len(v) > 64 {
		v = v[:64] + "…"
	}
	return fmt.Sprintf("%s=%q: %s", e.Param, v, e.Reason)
}

// Unwrap makes errors.Is(err, ErrBadParam) true.
func (e *ParamError) Unwrap() error { return ErrBadParam }

func bad(param, value, reason string) error {
	return &ParamError{Param: param, Value: value, Reason: reason}
}
