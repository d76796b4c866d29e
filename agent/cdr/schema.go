package cdr

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
)

// SchemaVersion is the version of the tables this package writes. It is
// stored in VoIPmonitor's `system` table (type = schemaVersionType) and each
// step in migrations raises it by one.
const SchemaVersion = 3

const schemaVersionType = "pbx_agent_schema_version"

// writtenTable holds one idempotency key per CDR or REGISTER written: a CDR
// whose key is present is never inserted again (queue replays, agent restarts,
// the same capture replayed twice).
const writtenTable = "pbx_agent_written"

const writtenDDL = `
  "k" binary(16) NOT NULL,
  "kind" tinyint(3) unsigned NOT NULL,
  "row_id" bigint(20) unsigned NOT NULL,
  "created_at" datetime(3) NOT NULL,
  PRIMARY KEY ("k"),
  KEY "created_at" ("created_at")
`

// sensorExtraColumns are the agent's additions to VoIPmonitor's `sensors`:
// which pbx-agent version runs there and when it last said it was alive.
var sensorExtraColumns = []struct{ name, def string }{
	{"agent_version", "varchar(100) DEFAULT NULL"},
	{"agent_heartbeat", "datetime DEFAULT NULL"},
}

// partitioned lists the tables that get daily partitions with cdr_partition,
// and the column they are partitioned by.
var partitioned = map[string]string{
	"cdr": "calldate", "cdr_next": "calldate", "cdr_rtp": "calldate",
	"cdr_sipresp": "calldate", "cdr_dtmf": "calldate",
	"register_state": "created_at", "register_failed": "created_at",
	"cdr_asterisk": "calldate", "cdr_rtp_series": "calldate",
}

// dropForeignKeys removes the CONSTRAINT … FOREIGN KEY lines of a table body.
func dropForeignKeys(body string) string {
	var keep []string
	for _, l := range strings.Split(strings.Trim(body, "\n"), "\n") {
		if !strings.Contains(l, "FOREIGN KEY") {
			keep = append(keep, strings.TrimSuffix(l, ","))
		}
	}
	return "\n" + strings.Join(keep, ",\n") + "\n"
}

// createStatement returns CREATE TABLE IF NOT EXISTS for one table. With
// partition, VoIPmonitor's cdr_partition layout is used: child tables carry
// their own calldate, primary keys include the partitioning column, no
// foreign keys, RANGE COLUMNS partitions by day (plus pmax so that no insert
// ever fails for want of a partition).
func createStatement(name, body string, partition bool, day time.Time) string {
	col, part := partitioned[name]
	part = part && partition
	if part {
		body = dropForeignKeys(body)
		switch {
		case strings.Contains(body, `PRIMARY KEY ("ID")`):
			body = strings.Replace(body, `PRIMARY KEY ("ID")`, `PRIMARY KEY ("ID","`+col+`")`, 1)
		case strings.Contains(body, `PRIMARY KEY ("cdr_ID")`):
			body = strings.Replace(body, `PRIMARY KEY ("cdr_ID")`, `PRIMARY KEY ("cdr_ID","`+col+`")`, 1)
		case strings.Contains(body, `PRIMARY KEY ("cdr_ID",`):
			body = strings.Replace(body, `PRIMARY KEY ("cdr_ID",`, `PRIMARY KEY ("cdr_ID","`+col+`",`, 1)
		}
		if !strings.Contains(body, `"`+col+`" datetime`) {
			body = strings.Replace(body, "\"cdr_ID\" bigint(20) unsigned NOT NULL,",
				"\"cdr_ID\" bigint(20) unsigned NOT NULL,\n  \""+col+"\" datetime(3) NOT NULL,", 1)
			body = strings.TrimRight(body, "\n") + ",\n  KEY \"" + col + "\" (\"" + col + "\")\n"
		}
	}
	s := "CREATE TABLE IF NOT EXISTS \"" + name + "\" (" + body + ") ENGINE=InnoDB DEFAULT CHARSET=latin1"
	if part {
		d := wallDate(day)
		s += fmt.Sprintf(" PARTITION BY RANGE COLUMNS(\"%s\") (PARTITION %s VALUES LESS THAN ('%s'), PARTITION pmax VALUES LESS THAN (MAXVALUE))",
			col, partName(d), d.AddDate(0, 0, 1).Format("2006-01-02"))
	}
	return quoteIdents(s)
}

// wallDate is t's calendar date in t's own location, as a UTC midnight:
// the day a datetime column written in that location shows (a daily
// partition holds the calldates of one local day, as VoIPmonitor's, whose
// calldates are local unless utc = yes).
func wallDate(t time.Time) time.Time {
	y, m, d := t.Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// partName is VoIPmonitor's daily partition name: pYYMMDD.
func partName(day time.Time) string { return "p" + day.Format("060102") }

// quoteIdents turns the "identifier" quoting used in this file into backticks.
func quoteIdents(s string) string { return strings.ReplaceAll(s, `"`, "`") }

// migrations[i] raises the schema from version i to i+1. Every step is
// idempotent so a crash between a step and the version update is harmless.
var migrations = []func(ctx context.Context, db *sql.DB, o schemaOptions) error{
	// 0 → 1: VoIPmonitor's tables and the idempotency keys.
	func(ctx context.Context, db *sql.DB, o schemaOptions) error {
		for _, t := range tableDDL {
			if _, err := db.ExecContext(ctx, createStatement(t.name, ddlBody(t.name, t.body, o.ipv6), o.partition, o.now)); err != nil {
				return fmt.Errorf("create %s: %w", t.name, err)
			}
		}
		_, err := db.ExecContext(ctx, createStatement(writtenTable, writtenDDL, false, o.now))
		return err
	},
	// 1 → 2: the agent's columns in sensors.
	func(ctx context.Context, db *sql.DB, o schemaOptions) error {
		for _, c := range sensorExtraColumns {
			if err := addColumn(ctx, db, "sensors", c.name, c.def); err != nil {
				return err
			}
		}
		return nil
	},
	// 2 → 3: cdr_asterisk, cdr_rtp_series, register_failed.reason (asterisk.go).
	migrateAgentTables,
}

type schemaOptions struct {
	partition bool
	ipv6      bool      // new tables get varbinary(16) IP columns
	now       time.Time // in the zone of stored times: its wall date names the first partition
}

// migrate creates or upgrades the schema; safe to run on every start and by
// several agents at once (each step is idempotent).
func migrate(ctx context.Context, db *sql.DB, o schemaOptions) error {
	// system first: it holds the version.
	for _, t := range tableDDL {
		if t.name == "system" {
			if _, err := db.ExecContext(ctx, createStatement(t.name, t.body, false, o.now)); err != nil {
				return fmt.Errorf("%w: create system: %w", ErrSchema, err)
			}
		}
	}
	v, err := schemaVersion(ctx, db)
	if err != nil {
		return fmt.Errorf("%w: read version: %w", ErrSchema, err)
	}
	if v > SchemaVersion {
		return fmt.Errorf("%w: database schema version %d is newer than this agent's %d", ErrSchema, v, SchemaVersion)
	}
	for ; v < SchemaVersion; v++ {
		if err := migrations[v](ctx, db, o); err != nil {
			return fmt.Errorf("%w: step %d→%d: %w", ErrSchema, v, v+1, err)
		}
		if err := setSchemaVersion(ctx, db, v+1, o.now); err != nil {
			return fmt.Errorf("%w: write version: %w", ErrSchema, err)
		}
	}
	if o.partition {
		if err := EnsurePartitions(ctx, db, o.now.AddDate(0, 0, 2)); err != nil {
			return fmt.Errorf("%w: partitions: %w", ErrSchema, err)
		}
	}
	return nil
}

func schemaVersion(ctx context.Context, db *sql.DB) (int, error) {
	var s string
	err := db.QueryRowContext(ctx, "SELECT `content` FROM `system` WHERE `type` = ? ORDER BY `id` DESC LIMIT 1", schemaVersionType).Scan(&s)
	if err == sql.ErrNoRows {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(s)
}

// setSchemaVersion stores v with now's date and time (cdate, cdatetime), in
// now's zone: the zone of every stored time, not the server session's.
func setSchemaVersion(ctx context.Context, db *sql.DB, v int, now time.Time) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it is a no-op
	if _, err := tx.ExecContext(ctx, "DELETE FROM `system` WHERE `type` = ?", schemaVersionType); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, "INSERT INTO `system` (`type`, `cdate`, `cdatetime`, `content`) VALUES (?, ?, ?, ?)",
		schemaVersionType, now.Format("2006-01-02"), now.Format("2006-01-02 15:04:05"), strconv.Itoa(v)); err != nil {
		return err
	}
	return tx.Commit()
}

// reorganize runs one REORGANIZE PARTITION (retryDDL). dup reports that the
// partition exists already (error 1517: another agent added it).
func reorganize(ctx context.Context, db *sql.DB, q string) (dup bool, err error) {
	err = retryDDL(ctx, db, q)
	var me *mysql.MySQLError
	if errors.As(err, &me) && me.Number == 1517 {
		return true, nil
	}
	return false, err
}

// retryDDL runs one partition statement (REORGANIZE, DROP PARTITION). On
// Galera it is a TOI step that another DDL can abort (error 1213), and its
// metadata lock may wait past innodb_lock_wait_timeout behind the sensors'
// writes (error 1205): nothing was changed either way, so it is tried again.
func retryDDL(ctx context.Context, db *sql.DB, q string) error {
	for attempt := 1; ; attempt++ {
		_, err := db.ExecContext(ctx, q)
		var me *mysql.MySQLError
		lockWait := errors.As(err, &me) && me.Number == 1205
		if !(isConflict(err) || lockWait) || attempt > conflictRetries || !sleepCtx(ctx, time.Duration(attempt)*50*time.Millisecond) {
			return err
		}
	}
}

// EnsurePartitions splits pmax so that every partitioned table has a daily
// partition up to and including the day of upTo: VoIPmonitor's daily
// REORGANIZE PARTITION, which the writer runs on every heartbeat with
// cdr_partition (on Galera each ALTER is a brief cluster-wide TOI step; a
// batch it aborts is retried). Tables without partitions are left alone.
//
// The day of upTo is its calendar date in its own location: pass a time in
// the zone of the stored calldates.
func EnsurePartitions(ctx context.Context, db *sql.DB, upTo time.Time) error {
	last := wallDate(upTo)
	for table := range partitioned {
		rows, err := db.QueryContext(ctx, `SELECT partition_name FROM information_schema.partitions
			WHERE table_schema = DATABASE() AND table_name = ? AND partition_name IS NOT NULL`, table)
		if err != nil {
			return err
		}
		var newest time.Time
		have := false
		for rows.Next() {
			var name string
			if err := rows.Scan(&name); err != nil {
				rows.Close()
				return err
			}
			if d, err := time.Parse("060102", strings.TrimPrefix(name, "p")); err == nil {
				have = true
				if d.After(newest) {
					newest = d
				}
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if !have {
			continue // table is not partitioned
		}
		for d := newest.AddDate(0, 0, 1); !d.After(last); d = d.AddDate(0, 0, 1) {
			q := fmt.Sprintf("ALTER TABLE `%s` REORGANIZE PARTITION pmax INTO (PARTITION %s VALUES LESS THAN ('%s'), PARTITION pmax VALUES LESS THAN (MAXVALUE))",
				table, partName(d), d.AddDate(0, 0, 1).Format("2006-01-02"))
			dup, err := reorganize(ctx, db, q)
			if err != nil {
				return fmt.Errorf("%s: %w", table, err)
			}
			if dup {
				break // another agent added this day meanwhile
			}
		}
	}
	return nil
}
