// Package sensors lets agents that share one MySQL database work as one
// site: each agent keeps its row in VoIPmonitor's `sensors` table fresh
// (Registry.Run: heartbeat, marked stopped on clean shutdown), and any agent
// can reach the others' manager APIs (Client: bounded connections,
// per-sensor timeouts, AES with per-sensor keys from the config or the
// `system` table) — to merge their active calls in parallel, pause their
// calls, and fetch spool files that live on them.
//
// Liveness is judged by the database's own clock (UTC_TIMESTAMP()), so skew
// between the sensors' clocks does not make a sensor look offline.
//
// This package is the one writer of the `sensors` rows. It also supplies
// the web front end's implementations of webui.Remote (WebRemote) and
// player.Remote (ManagerRemote, a listen_stream through
// agent/manager/client).
package sensors

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"sync"
	"time"
)

// Defaults for zero Options.
const (
	DefaultHeartbeat = 10 * time.Second
	DefaultListTTL   = time.Second
	stopTimeout      = 3 * time.Second
	maxRetryWait     = 30 * time.Second
)

// Self is this agent's row in `sensors`.
type Self struct {
	ID      int    // id_sensor; < 0 = not registered (a front end without an id)
	Name    string // sensors.name (default: host name)
	Host    string // manager host other agents dial (sensors.host)
	Port    int    // manager TCP port (sensors.port); 0 = not reachable
	Version string // sensors.agent_version
	KeyID   string // sensors.agent_key_id: KeyID of this agent's manager key, "" = none
	// Location is the zone of the times this agent stores (utc,
	// timezone); nil = UTC. ZoneName names it in sensors.timezone_name
	// ("" = Location's name). timezone_offset is Location's offset at
	// registration and timezone_save_at that moment in Location, as
	// VoIPmonitor's saveTimezoneInformation (sql_db.cpp:9208-9256).
	Location *time.Location
	ZoneName string
}

// Options configure a Registry.
type Options struct {
	DB   *sql.DB // required
	Self Self
	// Heartbeat is how often the row is refreshed (default 10 s).
	Heartbeat time.Duration
	// StaleAfter is the heartbeat age after which a sensor is offline
	// (default 3 heartbeats + 5 s).
	StaleAfter time.Duration
	// ListTTL is how long List's answer is reused (default 1 s), so a burst
	// of listActiveCalls does not query `sensors` each time.
	ListTTL time.Duration
	Logger  *slog.Logger
}

// State is a sensor's liveness.
type State uint8

// Sensor states.
const (
	Unknown State = iota // row without agent heartbeat (e.g. a VoIPmonitor sniffer): tried anyway
	Online
	Offline // heartbeat older than StaleAfter
	Stopped // shut down cleanly
)

func (s State) String() string {
	switch s {
	case Online:
		return "online"
	case Offline:
		return "offline"
	case Stopped:
		return "stopped"
	}
	return "unknown"
}

// Reachable reports whether requests are sent to a sensor in this state.
func (s State) Reachable() bool { return s == Online || s == Unknown }

// Sensor is one row of `sensors`.
type Sensor struct {
	ID        int
	Name      string
	Host      string
	Port      int
	Zone      string        // timezone_name
	Version   string        // agent_version ("" = not a pbx-agent)
	KeyID     string        // agent_key_id
	Heartbeat time.Time     // local clock's idea of when the last heartbeat was
	Age       time.Duration // heartbeat age by the database clock
	State     State
}

// Addr is the sensor's manager address (host:port), "" when it has none.
func (s Sensor) Addr() string {
	if s.Host == "" || s.Port <= 0 {
		return ""
	}
	return net.JoinHostPort(s.Host, strconv.Itoa(s.Port))
}

// Registry keeps this agent's row fresh and lists the site's sensors. Safe
// for concurrent use.
type Registry struct {
	o   Options
	log *slog.Logger

	mu     sync.Mutex
	cached []Sensor
	at     time.Time
	schema bool
}

// New builds a Registry; it does not contact the database.
func New(o Options) (*Registry, error) {
	if o.DB == nil {
		return nil, ErrNoDatabase
	}
	if o.Heartbeat <= 0 {
		o.Heartbeat = DefaultHeartbeat
	}
	if o.StaleAfter <= 0 {
		o.StaleAfter = 3*o.Heartbeat + 5*time.Second
	}
	if o.ListTTL <= 0 {
		o.ListTTL = DefaultListTTL
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Self.Name == "" {
		o.Self.Name, _ = os.Hostname()
	}
	return &Registry{o: o, log: o.Logger.With("component", "sensors")}, nil
}

// SelfID is this agent's id_sensor (-1 when unset).
func (r *Registry) SelfID() int { return r.o.Self.ID }

// StaleAfter is the heartbeat age after which a sensor counts as offline.
func (r *Registry) StaleAfter() time.Duration { return r.o.StaleAfter }

// AdvertiseHost picks the host other agents should dial for a manager bound
// to managerip: the address itself, or the host name when it is a wildcard.
func AdvertiseHost(managerIP string) string {
	if ip := net.ParseIP(managerIP); ip != nil && ip.IsUnspecified() || managerIP == "" {
		h, _ := os.Hostname()
		return h
	}
	return managerIP
}

// sensorsDDL is VoIPmonitor's `sensors` plus the agent's columns; system is
// VoIPmonitor's. Both match agent/cdr's, so whichever runs first wins and the
// other's CREATE … IF NOT EXISTS is a no-op.
const (
	sensorsDDL = "CREATE TABLE IF NOT EXISTS `sensors` (" +
		"`id_sensor` int(10) unsigned NOT NULL, `name` varchar(256) DEFAULT NULL, `host` varchar(255) DEFAULT NULL, " +
		"`port` int(11) DEFAULT NULL, `timezone_name` varchar(64) DEFAULT NULL, `timezone_offset` int(11) DEFAULT NULL, " +
		"`timezone_save_at` datetime DEFAULT NULL, PRIMARY KEY (`id_sensor`)) ENGINE=InnoDB DEFAULT CHARSET=latin1"
	systemDDL = "CREATE TABLE IF NOT EXISTS `system` (`id` int(11) NOT NULL AUTO_INCREMENT, `type` text DEFAULT NULL, " +
		"`cdate` date DEFAULT NULL, `cdatetime` datetime DEFAULT NULL, `content` text DEFAULT NULL, PRIMARY KEY (`id`)) " +
		"ENGINE=InnoDB DEFAULT CHARSET=latin1"
)

// agentColumns are the agent's additions to `sensors` (agent_version and
// agent_heartbeat are agent/cdr's too).
var agentColumns = []struct{ name, def string }{
	{"agent_version", "varchar(100) DEFAULT NULL"},
	{"agent_heartbeat", "datetime DEFAULT NULL"},
	{"agent_key_id", "varchar(32) DEFAULT NULL"},
	{"agent_stopped_at", "datetime DEFAULT NULL"},
}

// EnsureSchema creates `sensors` and `system` when missing and adds the
// agent's columns. Idempotent; safe with several agents starting at once.
func (r *Registry) EnsureSchema(ctx context.Context) error {
	r.mu.Lock()
	done := r.schema
	r.mu.Unlock()
	if done {
		return nil
	}
	for _, q := range []string{sensorsDDL, systemDDL} {
		if _, err := r.o.DB.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("sensors: create table: %w", err)
		}
	}
	for _, c := range agentColumns {
		var n int
		err := r.o.DB.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.columns "+
			"WHERE table_schema = DATABASE() AND table_name = 'sensors' AND column_name = ?", c.name).Scan(&n)
		if err != nil {
			return fmt.Errorf("sensors: inspect columns: %w", err)
		}
		if n > 0 {
			continue
		}
		if _, err := r.o.DB.ExecContext(ctx, "ALTER TABLE `sensors` ADD COLUMN `"+c.name+"` "+c.def); err != nil {
			// Another agent may have added it between the check and here.
			if cerr := r.o.DB.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.columns "+
				"WHERE table_schema = DATABASE() AND table_name = 'sensors' AND column_name = ?", c.name).Scan(&n); cerr != nil || n == 0 {
				return fmt.Errorf("sensors: add column %s: %w", c.name, err)
			}
		}
	}
	r.mu.Lock()
	r.schema = true
	r.mu.Unlock()
	return nil
}

// Register writes this agent's row (insert or update) with a fresh
// heartbeat and no stop mark.
func (r *Registry) Register(ctx context.Context) error {
	s := r.o.Self
	if s.ID < 0 {
		return nil
	}
	loc := s.Location
	if loc == nil {
		loc = time.UTC
	}
	now := time.Now().In(loc)
	zone, off := now.Zone()
	if s.ZoneName != "" {
		zone = s.ZoneName
	} else if loc != time.Local {
		zone = loc.String()
	}
	_, err := r.o.DB.ExecContext(ctx, "INSERT INTO `sensors` (`id_sensor`,`name`,`host`,`port`,`timezone_name`,`timezone_offset`,"+
		"`timezone_save_at`,`agent_version`,`agent_heartbeat`,`agent_key_id`,`agent_stopped_at`) "+
		"VALUES (?,?,?,?,?,?,?,?,UTC_TIMESTAMP(),?,NULL) ON DUPLICATE KEY UPDATE `name`=VALUES(`name`),"+
		"`host`=VALUES(`host`),`port`=VALUES(`port`),`timezone_name`=VALUES(`timezone_name`),`timezone_offset`=VALUES(`timezone_offset`),"+
		"`timezone_save_at`=VALUES(`timezone_save_at`),`agent_version`=VALUES(`agent_version`),`agent_heartbeat`=VALUES(`agent_heartbeat`),"+
		"`agent_key_id`=VALUES(`agent_key_id`),`agent_stopped_at`=NULL",
		s.ID, truncate(s.Name, 256), truncate(s.Host, 255), s.Port, truncate(zone, 64), off, now.Format("2006-01-02 15:04:05"),
		truncate(s.Version, 100), nullString(s.KeyID))
	if err != nil {
		return fmt.Errorf("sensors: register %d: %w", s.ID, err)
	}
	r.invalidate()
	return nil
}

// Beat refreshes the heartbeat; a missing row (deleted by an operator) is
// written again.
func (r *Registry) Beat(ctx context.Context) error {
	if r.o.Self.ID < 0 {
		return nil
	}
	res, err := r.o.DB.ExecContext(ctx, "UPDATE `sensors` SET `agent_heartbeat` = UTC_TIMESTAMP(), `agent_stopped_at` = NULL WHERE `id_sensor` = ?", r.o.Self.ID)
	if err != nil {
		return fmt.Errorf("sensors: heartbeat: %w", err)
	}
	// RowsAffected is 0 also when the value did not change (same second):
	// only re-register when the row is really gone.
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		var one int
		if err := r.o.DB.QueryRowContext(ctx, "SELECT 1 FROM `sensors` WHERE `id_sensor` = ?", r.o.Self.ID).Scan(&one); errors.Is(err, sql.ErrNoRows) {
			return r.Register(ctx)
		}
	}
	return nil
}

// MarkStopped records a clean shutdown: the sensor shows as stopped at once
// instead of after StaleAfter.
func (r *Registry) MarkStopped(ctx context.Context) error {
	if r.o.Self.ID < 0 {
		return nil
	}
	if _, err := r.o.DB.ExecContext(ctx, "UPDATE `sensors` SET `agent_stopped_at` = UTC_TIMESTAMP() WHERE `id_sensor` = ?", r.o.Self.ID); err != nil {
		return fmt.Errorf("sensors: mark stopped: %w", err)
	}
	r.invalidate()
	return nil
}

// Run registers this agent (retrying with capped backoff while the database
// is unreachable), refreshes the heartbeat every Heartbeat until ctx ends,
// then marks the row stopped. It returns nil when ctx ends.
func (r *Registry) Run(ctx context.Context) error {
	if r.o.Self.ID < 0 {
		r.log.Info("no id_sensor: not registering in sensors (front end only)")
		<-ctx.Done()
		return nil
	}
	wait := time.Second
	for {
		err := r.EnsureSchema(ctx)
		if err == nil {
			err = r.Register(ctx)
		}
		if err == nil {
			break
		}
		r.log.Warn("sensor registration failed; retrying", "err", err, "retry_in", wait)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
		wait = min(2*wait, maxRetryWait)
	}
	r.log.Info("registered in sensors", "id_sensor", r.o.Self.ID, "host", r.o.Self.Host, "port", r.o.Self.Port)
	t := time.NewTicker(r.o.Heartbeat)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), stopTimeout)
			err := r.MarkStopped(sctx)
			cancel()
			if err != nil {
				r.log.Warn("could not mark the sensor stopped; it shows offline once its heartbeat is stale", "err", err)
			}
			return nil
		case <-t.C:
			err := r.Beat(ctx)
			switch {
			case err != nil && !failing:
				r.log.Warn("sensor heartbeat failed", "err", err)
				failing = true
			case err == nil && failing:
				r.log.Info("sensor heartbeat recovered")
				failing = false
			}
		}
	}
}

func (r *Registry) invalidate() {
	r.mu.Lock()
	r.cached, r.at = nil, time.Time{}
	r.mu.Unlock()
}

// List returns every sensor row with its state, reusing an answer younger
// than ListTTL. The returned slice must not be modified.
func (r *Registry) List(ctx context.Context) ([]Sensor, error) {
	r.mu.Lock()
	if r.cached != nil && time.Since(r.at) < r.o.ListTTL {
		s := r.cached
		r.mu.Unlock()
		return s, nil
	}
	r.mu.Unlock()
	s, err := r.query(ctx)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	r.cached, r.at = s, time.Now()
	r.mu.Unlock()
	return s, nil
}

// Lookup returns one sensor's row.
func (r *Registry) Lookup(ctx context.Context, id int) (Sensor, error) {
	all, err := r.List(ctx)
	if err != nil {
		return Sensor{}, err
	}
	for _, s := range all {
		if s.ID == id {
			return s, nil
		}
	}
	return Sensor{}, fmt.Errorf("%w: %d", ErrUnknownSensor, id)
}

func (r *Registry) query(ctx context.Context) ([]Sensor, error) {
	if err := r.EnsureSchema(ctx); err != nil {
		return nil, err
	}
	rows, err := r.o.DB.QueryContext(ctx, "SELECT `id_sensor`, COALESCE(`name`,''), COALESCE(`host`,''), COALESCE(`port`,0), "+
		"COALESCE(`timezone_name`,''), COALESCE(`agent_version`,''), COALESCE(`agent_key_id`,''), "+
		"TIMESTAMPDIFF(SECOND, `agent_heartbeat`, UTC_TIMESTAMP()), "+
		"`agent_stopped_at` IS NOT NULL AND (`agent_heartbeat` IS NULL OR `agent_stopped_at` >= `agent_heartbeat`) "+
		"FROM `sensors` ORDER BY `id_sensor`")
	if err != nil {
		return nil, fmt.Errorf("sensors: list: %w", err)
	}
	defer rows.Close()
	var out []Sensor
	for rows.Next() {
		var s Sensor
		var age sql.NullInt64
		var stopped bool
		if err := rows.Scan(&s.ID, &s.Name, &s.Host, &s.Port, &s.Zone, &s.Version, &s.KeyID, &age, &stopped); err != nil {
			return nil, fmt.Errorf("sensors: list: %w", err)
		}
		switch {
		case stopped:
			s.State = Stopped
		case !age.Valid:
			s.State = Unknown
		case time.Duration(age.Int64)*time.Second > r.o.StaleAfter:
			s.State = Offline
		default:
			s.State = Online
		}
		if age.Valid {
			s.Age = time.Duration(age.Int64) * time.Second
			s.Heartbeat = time.Now().Add(-s.Age).Truncate(time.Second)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sensors: list: %w", err)
	}
	if out == nil {
		out = []Sensor{}
	}
	return out, nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}
