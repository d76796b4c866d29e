package webui

import (
	"context"
	"database/sql"
	"sync"
	"time"
)

// auditTable is the agent's own audit log of api.php calls (auditReason).
const auditTable = "pbx_agent_api_audit"

const auditDDL = "CREATE TABLE IF NOT EXISTS `" + auditTable + "` (" +
	"`id` bigint unsigned NOT NULL AUTO_INCREMENT," +
	"`created_at` datetime(3) NOT NULL," +
	"`user` varchar(255) NOT NULL," +
	"`address` varchar(64) NOT NULL," +
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
	At                       time.Time
	User, Addr, Task, Params string
	Reason, Result           string
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
		a.created = true
	}
	a.mu.Unlock()
	_, err := a.db.ExecContext(ctx, "INSERT INTO `"+auditTable+"` (created_at, user, address, task, params, reason, result) VALUES (?,?,?,?,?,?,?)",
		e.At.UTC().Format("2006-01-02 15:04:05.000"), truncate(e.User, 255), truncate(e.Addr, 64), truncate(e.Task, 64),
		truncate(e.Params, 4096), truncate(e.Reason, 4096), truncate(e.Result, 255))
	return err
}
