package cdr

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"pbx-agent/sniffer/call"
)

// The agent's own tables beside VoIPmonitor's (its GUI ignores tables it
// does not know; VoIPmonitor's own tables keep their exact definitions):
//
//   - cdr_asterisk: one row per CDR correlated with an Asterisk channel
//     (Linkedid, Uniqueid, channel name, the channel's hang-up cause). The
//     legs of one conversation share a Linkedid; its index groups them.
//   - cdr_rtp_series: one row per RTP stream with its quality per second
//     (sniffer/rtp Series in its 11-byte-per-point binary form), VoIPmonitor's
//     savegraph kept in the database: written in the CDR's transaction, read
//     by any sensor's web front through the shared database, removed with the
//     CDR (foreign key, or the day's partition), at most
//     rtp.MaxSeriesPoints points (≈ 39 KB) per stream.
//
// register_failed gets one column, `reason`: the last failure's status line
// and Warning (added with ALTER, as sensors' agent_version).

// Asterisk is a CDR's Asterisk correlation (agent/correlate's view of it).
type Asterisk struct {
	Linkedid        string `json:"linkedid"`
	Uniqueid        string `json:"uniqueid"`
	Channel         string `json:"channel"`
	HangupCause     int    `json:"cause,omitempty"` // Q.850 cause of the channel's AMI Hangup; 0 = not seen
	HangupCauseText string `json:"cause_txt,omitempty"`
	AccountCode     string `json:"accountcode,omitempty"`
	Context         string `json:"context,omitempty"`
	Exten           string `json:"exten,omitempty"`
	Match           string `json:"match,omitempty"` // how the channel was found: "callid" or "time"
}

var agentTables = []struct{ name, body string }{
	{"cdr_asterisk", `
  "cdr_ID" bigint(20) unsigned NOT NULL,
  "calldate" datetime(3) NOT NULL,
  "linkedid" varchar(64) DEFAULT NULL,
  "uniqueid" varchar(64) DEFAULT NULL,
  "channel" varchar(255) DEFAULT NULL,
  "hangup_cause" smallint(5) unsigned DEFAULT NULL,
  "hangup_cause_text" varchar(255) DEFAULT NULL,
  "accountcode" varchar(80) DEFAULT NULL,
  "context" varchar(80) DEFAULT NULL,
  "exten" varchar(80) DEFAULT NULL,
  "match_by" varchar(8) DEFAULT NULL,
  PRIMARY KEY ("cdr_ID"),
  KEY "linkedid" ("linkedid"),
  KEY "uniqueid" ("uniqueid"),
  CONSTRAINT "cdr_asterisk_ibfk_1" FOREIGN KEY ("cdr_ID") REFERENCES "cdr" ("ID") ON DELETE CASCADE ON UPDATE CASCADE
`},
	{"cdr_rtp_series", `
  "cdr_ID" bigint(20) unsigned NOT NULL,
  "calldate" datetime(3) NOT NULL,
  "index" tinyint(3) unsigned NOT NULL,
  "start" datetime(3) NOT NULL,
  "step" smallint(5) unsigned NOT NULL,
  "points" mediumblob NOT NULL,
  PRIMARY KEY ("cdr_ID","index"),
  CONSTRAINT "cdr_rtp_series_ibfk_1" FOREIGN KEY ("cdr_ID") REFERENCES "cdr" ("ID") ON DELETE CASCADE ON UPDATE CASCADE
`},
}

// registerFailedReason is the agent's column in register_failed.
const registerFailedReason = "varchar(255) DEFAULT NULL"

// migrateAgentTables is schema step 2 → 3.
func migrateAgentTables(ctx context.Context, db *sql.DB, o schemaOptions) error {
	for _, t := range agentTables {
		if _, err := db.ExecContext(ctx, createStatement(t.name, t.body, o.partition, o.now)); err != nil {
			return fmt.Errorf("create %s: %w", t.name, err)
		}
	}
	return addColumn(ctx, db, "register_failed", "reason", registerFailedReason)
}

// addColumn adds a column unless it is there.
func addColumn(ctx context.Context, db *sql.DB, table, name, def string) error {
	var n int
	err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM information_schema.columns
		WHERE table_schema = DATABASE() AND table_name = ? AND column_name = ?`, table, name).Scan(&n)
	if err != nil {
		return err
	}
	if n == 0 {
		if _, err := db.ExecContext(ctx, "ALTER TABLE `"+table+"` ADD COLUMN `"+name+"` "+def); err != nil {
			return fmt.Errorf("alter %s: %w", table, err)
		}
	}
	return nil
}

// cdrAsteriskRow is a correlated CDR's cdr_asterisk row.
func cdrAsteriskRow(cdrID uint64, c *call.CDR, a *Asterisk) row {
	var cause any
	if a.HangupCause > 0 {
		cause = clampU(int64(a.HangupCause), maxSmall)
	}
	opt := func(s string, n int) any {
		if s == "" {
			return nil
		}
		return str(s, n)
	}
	return row{{"cdr_ID", cdrID}, {"calldate", c.CallDate.UTC()},
		{"linkedid", opt(a.Linkedid, 64)}, {"uniqueid", opt(a.Uniqueid, 64)}, {"channel", opt(a.Channel, 255)},
		{"hangup_cause", cause}, {"hangup_cause_text", opt(a.HangupCauseText, 255)},
		{"accountcode", opt(a.AccountCode, 80)}, {"context", opt(a.Context, 80)}, {"exten", opt(a.Exten, 80)},
		{"match_by", opt(a.Match, 8)}}
}

// cdrSeriesRows are the cdr_rtp_series rows of a CDR's streams that have a
// series; index is cdr_rtp's. Only the first maxTiny streams have one: the
// index is part of the key, and a later stream's (clamped to maxTiny, as
// cdr_rtp's) would repeat it and get the whole CDR rejected.
func cdrSeriesRows(cdrID uint64, c *call.CDR) []row {
	var out []row
	for i := range c.Streams[:min(len(c.Streams), maxTiny)] {
		sr := &c.Streams[i].Series
		if len(sr.Points) == 0 {
			continue
		}
		b, err := sr.MarshalBinary()
		if err != nil {
			continue
		}
		out = append(out, row{{"cdr_ID", cdrID}, {"calldate", c.CallDate.UTC()}, {"index", int64(i + 1)},
			{"start", sr.Start.UTC().Truncate(time.Millisecond)}, {"step", clampU(int64(sr.Step), maxSmall)}, {"points", b}})
	}
	return out
}
