package sensors

import "errors"

// Sentinel errors. Callers test them with errors.Is.
var (
	// ErrNoDatabase is returned when a Registry has no *sql.DB.
	ErrNoDatabase = errors.New("sensors: no database")
	// ErrUnknownSensor reports an id_sensor with no row in `sensors`.
	ErrUnknownSensor = errors.New("sensors: unknown sensor")
	// ErrOffline reports a sensor whose heartbeat is stale or that stopped.
	ErrOffline = errors.New("sensors: sensor offline")
	// ErrNoAddress reports a sensor row without a usable manager host/port.
	ErrNoAddress = errors.New("sensors: sensor has no manager address")
	// ErrBusy reports that no connection slot to a sensor freed up before
	// the deadline (its earlier requests are still hanging).
	ErrBusy = errors.New("sensors: too many requests in flight to sensor")
	// ErrNeedAES is a sensor's `need aes!` reply: it has a manager key and
	// this agent has none (or not the right one) for it.
	ErrNeedAES = errors.New("sensors: sensor requires an AES key")
	// ErrKeyRejected is a sensor's `failed aes decrypt!` reply, or a reply
	// that does not decrypt with the key used: the keys differ.
	ErrKeyRejected = errors.New("sensors: AES key rejected by sensor")
	// ErrReplyTooLarge reports a reply longer than the allowed size.
	ErrReplyTooLarge = errors.New("sensors: reply too large")
	// ErrBadReply reports a reply that cannot be parsed.
	ErrBadReply = errors.New("sensors: bad reply")
	// ErrAccessDenied is a sensor's `access denied` reply to getfile.
	ErrAccessDenied = errors.New("sensors: access denied by sensor")
	// ErrBadKeyOption reports a malformed sensor_manager_key value.
	ErrBadKeyOption = errors.New("sensors: bad sensor key option")
)
