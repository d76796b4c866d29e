package sniffer

import "errors"

var (
	ErrPorts = errors.New("sniffer: bad port list")
)
