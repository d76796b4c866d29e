package cdr

import "errors"

var (
	// ErrSchema is returned when the schema cannot be created or migrated.
	ErrSchema = errors.New("cdr: schema")
	// ErrQueue wraps failures of the on-disk queue (I/O, full disk).
	ErrQueue = errors.New("cdr: disk queue")
	// ErrQueueFull is returned when the on-disk queue reached cdr_queue_max_mb.
	ErrQueueFull = errors.New("cdr: disk queue full")
	// ErrClosed is returned by Enqueue after Close.
	ErrClosed = errors.New("cdr: writer closed")
	// ErrNoDatabase is returned by New without a DSN.
	ErrNoDatabase = errors.New("cdr: no database configured")
	// ErrClean wraps failures of database cleaning (cleandatabase).
	ErrClean = errors.New("cdr: database cleaning")
	// ErrRecord is returned for a queued record that cannot be decoded.
	ErrRecord = errors.New("cdr: bad queue record")
)
