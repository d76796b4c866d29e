package webui

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"time"

	"pbx-agent/sniffer/call"
)

// auditTable is the agent's own audit log of api.php calls (auditReason)
// and of every pause/unpause, whichever interface it came through (via:
// api.php, dashboard, manager-tcp, manager-socket).
const auditTable = "pbx_agent_api_audit"

const auditDDL = "CREATE TABLE IF NOT EXISTS `" + auditTable + "` (" +
	"`id` bigint unsigned NOT NULL AUTO_INCREMENT," +
	"`created_at` datetime(3) NOT NULL," +
	"`user` varchar(255) NOT NULL," +
	"`address` varchar(64) NOT NULL," +
	"`via` varchar(32) DEFAULT NULL," +
	"`task` varchar(64) NOT NULL," +
	"`params` text," +
	"`reason` text," +
	"`result` varchar(255) DEFAULT NULL," +
	"PRIMARY KEY (`id`), KEY `created_at` (`created_at`)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"

type auditLog struct {
	db      *sql.DB
	mu      sync.Mutex
	created bool
}

type auditEntry struct {
	At                            time.Time
	User, Addr, Via, Task, Params string
	Reason, Result                string
}

// AuditPause records a pause or unpause that did not come through api.php
// (the manager API's pausecall/unpausecall) in the audit table.
func (h *Handler) AuditPause(ctx context.Context, rq call.Requester, ref uint64, on bool, err error) {
	task, result := "unpausecall", "ok"
	if on {
		task = "pausecall"
	}
	if err != nil {
		result = err.Error()
	}
	e := auditEntry{At: h.now(), User: rq.User, Addr: rq.Source, Via: rq.Via, Task: task,
		Params: fmt.Sprintf(`{"callRef":"0x%x"}`, ref), Reason: rq.Reason, Result: result}
	if aerr := h.audit.write(ctx, e); aerr != nil {
		h.log.Error("audit log write failed", "task", task, "via", rq.Via, "err", aerr)
	}
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// write stores one entry, creating the table on first use.
func (a *auditLog) write(ctx context.Context, e auditEntry) error {
	if a.db == nil {
		return nil
	}
	a.mu.Lock()
	if !a.created {
		if _, err := a.db.ExecContext(ctx, auditDDL); err != nil {
			a.mu.Unlock()
			return err
		}
		if err := a.addVia(ctx); err != nil {
			a.mu.Unlock()
			return err
		}
		a.created = true
	}
	a.mu.Unlock()
	_, err := a.db.ExecContext(ctx, "INSERT INTO `"+auditTable+"` (created_at, user, address, via, task, params, reason, result) VALUES (?,?,?,?,?,?,?,?)",
		e.At.UTC().Format("2006-01-02 15:04:05.000"), truncate(e.User, 255), truncate(e.Addr, 64), truncate(e.Via, 32), truncate(e.Task, 64),
		truncate(e.Params, 4096), truncate(e.Reason, 4096), truncate(e.Result, 255))
	return err
}

// addVia adds the via column to an audit table created by an older agent.
func (a *auditLog) addVia(ctx context.Context) error {
	var n int
	if err := a.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? AND COLUMN_NAME = 'via'",
		auditTable).Scan(&n); err != nil || n > 0 {
		return err
	}
	_, err := a.db.ExecContext(ctx, "ALTER TABLE `"+auditTable+"` ADD COLUMN `via` varchar(32) DEFAULT NULL AFTER `address`")
	return err
}
