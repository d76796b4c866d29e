package doctor

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"

	"github.com/go-sql-driver/mysql"

	"pbx-agent/agent/cdr"
	"pbx-agent/agent/config"
	"pbx-agent/agent/dbconn"
)

// Space thresholds for the spool and the CDR queue.
const (
	minFree  = 100 << 20
	warnFree = 1 << 30
)

// checkDir checks that dir is (or can be created) writable, with free space.
func checkDir(r *Report, check, dir, key string) {
	chown := fmt.Sprintf("`install -d -o pbx-agent -g pbx-agent %s` (the packaged unit's StateDirectory= does this for /var/lib/pbx-agent)", dir)
	st, err := os.Stat(dir)
	if errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		parent := filepath.Dir(dir)
		for parent != "/" && parent != "." {
			if _, err := os.Stat(parent); err == nil {
				break
			}
			parent = filepath.Dir(parent)
		}
		if err := probeWrite(parent); err != nil {
			r.add(check, StatusFail, chown, "%s=%s does not exist and %s is not writable by uid %d", key, dir, parent, uid())
			return
		}
		r.add(check, StatusWarn, "", "%s=%s does not exist yet; the agent creates it", key, dir)
		return
	}
	if err != nil {
		r.add(check, StatusFail, chown, "%s=%s: %v", key, dir, err)
		return
	}
	if !st.IsDir() {
		r.add(check, StatusFail, "point "+key+" at a directory", "%s=%s is not a directory", key, dir)
		return
	}
	if err := probeWrite(dir); err != nil {
		r.add(check, StatusFail, chown, "%s=%s is not writable by uid %d: %v", key, dir, uid(), err)
		return
	}
	free, err := freeBytes(dir)
	switch {
	case err != nil:
		r.add(check, StatusOK, "", "%s writable (free space unknown: %v)", dir, err)
	case free < minFree:
		r.add(check, StatusFail, "free disk space or move "+key+" to a larger file system", "%s writable but only %s free", dir, human(free))
	case free < warnFree:
		r.add(check, StatusWarn, "free disk space or move "+key+" to a larger file system", "%s writable, %s free", dir, human(free))
	default:
		r.add(check, StatusOK, "", "%s writable, %s free", dir, human(free))
	}
}

func probeWrite(dir string) error {
	f, err := os.CreateTemp(dir, ".pbx-agent-doctor-*")
	if err != nil {
		return err
	}
	name := f.Name()
	f.Close()
	return os.Remove(name)
}

func human(n uint64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.0f MiB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%d bytes", n)
}

// neededPrivs are what the CDR writer uses: CREATE/ALTER for the schema and
// partitions, DELETE for the schema-version row.
var neededPrivs = []string{"SELECT", "INSERT", "UPDATE", "DELETE", "CREATE", "ALTER"}

// schemaVersionType is cdr's key in VoIPmonitor's `system` table.
const schemaVersionType = "pbx_agent_schema_version"

// checkMySQL connects, checks the grants on mysqldb and the schema version.
func checkMySQL(ctx context.Context, r *Report, env *Env, cfg *config.Config) {
	if !cfg.DatabaseEnabled() {
		r.add("mysql", StatusSkip, "", "no mysqlhost/mysqlsocket (or nocdr): CDR store off")
		return
	}
	mc, err := mysql.ParseDSN(cfg.MySQLDSN())
	if err != nil {
		r.add("mysql", StatusFail, "", "bad MySQL settings: %v", err)
		return
	}
	mc.Timeout, mc.ReadTimeout, mc.WriteTimeout = env.Timeout, env.Timeout, env.Timeout
	where := mc.Addr
	db, err := dbconn.Open(mc.FormatDSN(), nil)
	if err != nil {
		r.add("mysql", StatusFail, "", "%v", err)
		return
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(ctx, env.Timeout*3)
	defer cancel()
	grant := fmt.Sprintf("GRANT %s ON `%s`.* TO '%s'@'<agent host>'", strings.Join(neededPrivs, ", "), cfg.MySQLDB, cfg.MySQLUsername)
	if err := db.PingContext(ctx); err != nil {
		var me *mysql.MySQLError
		switch {
		case errors.As(err, &me) && me.Number == 1045:
			r.add("mysql", StatusFail, "check mysqlusername/mysqlpassword; as MySQL root: CREATE USER and "+grant, "access denied for %s at %s", cfg.MySQLUsername, where)
		case errors.As(err, &me) && me.Number == 1049:
			r.add("mysql", StatusFail, fmt.Sprintf("as MySQL root: CREATE DATABASE `%s`; %s", cfg.MySQLDB, grant), "database %s does not exist on %s", cfg.MySQLDB, where)
		case errors.As(err, &me) && me.Number == 1044:
			r.add("mysql", StatusFail, "as MySQL root: "+grant, "%s may not use database %s: %s", cfg.MySQLUsername, cfg.MySQLDB, me.Message)
		default:
			r.add("mysql", StatusFail, "is MariaDB/MySQL running (`systemctl status mariadb`)? check mysqlhost, mysqlport, mysqlsocket", "cannot reach MySQL at %s: %v", where, err)
		}
		return
	}
	var version string
	_ = db.QueryRowContext(ctx, "SELECT VERSION()").Scan(&version)
	r.add("mysql", StatusOK, "", "reachable at %s as %s (server %s)", where, cfg.MySQLUsername, orNone(version))

	grants, err := showGrants(ctx, db)
	if err != nil {
		r.add("mysql-grants", StatusWarn, "", "SHOW GRANTS: %v", err)
	} else if missing := missingPrivs(grants, cfg.MySQLDB); len(missing) > 0 {
		r.add("mysql-grants", StatusFail, "as MySQL root: "+grant,
			"%s lacks %s on %s.*", cfg.MySQLUsername, strings.Join(missing, ", "), cfg.MySQLDB)
	} else {
		r.add("mysql-grants", StatusOK, "", "%s has %s on %s.*", cfg.MySQLUsername, strings.Join(neededPrivs, ", "), cfg.MySQLDB)
	}

	var content string
	err = db.QueryRowContext(ctx, "SELECT `content` FROM `system` WHERE `type` = ? ORDER BY `id` DESC LIMIT 1", schemaVersionType).Scan(&content)
	var me *mysql.MySQLError
	switch {
	case errors.Is(err, sql.ErrNoRows), errors.As(err, &me) && me.Number == 1146:
		r.add("mysql-schema", StatusInfo, "", "no pbx-agent schema yet: version %d is created on first start", cdr.SchemaVersion)
	case err != nil:
		r.add("mysql-schema", StatusWarn, "", "reading the schema version: %v", err)
	default:
		v, perr := strconv.Atoi(strings.TrimSpace(content))
		switch {
		case perr != nil:
			r.add("mysql-schema", StatusWarn, "", "schema version %q unreadable", content)
		case v > cdr.SchemaVersion:
			r.add("mysql-schema", StatusFail, "upgrade pbx-agent: a newer agent migrated this database", "database schema version %d is newer than this agent's %d", v, cdr.SchemaVersion)
		case v < cdr.SchemaVersion:
			r.add("mysql-schema", StatusOK, "", "schema version %d: migrated to %d on next start", v, cdr.SchemaVersion)
		default:
			r.add("mysql-schema", StatusOK, "", "schema version %d (current)", v)
		}
	}
}

func showGrants(ctx context.Context, db *sql.DB) ([]string, error) {
	rows, err := db.QueryContext(ctx, "SHOW GRANTS")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

var grantRE = regexp.MustCompile("(?i)^GRANT (.+?) ON (?:TABLE |PROCEDURE |FUNCTION )?(\\S+) TO ")

// missingPrivs returns the needed privileges no grant line gives on db.*.
func missingPrivs(grants []string, db string) []string {
	have := map[string]bool{}
	for _, g := range grants {
		m := grantRE.FindStringSubmatch(g)
		if m == nil {
			continue
		}
		dbPat, tbl, ok := strings.Cut(m[2], ".")
		if !ok || strings.Trim(tbl, "`") != "*" {
			continue // table-level grants do not cover new tables
		}
		dbPat = strings.Trim(dbPat, "`")
		if dbPat != "*" && !likeMatch(dbPat, db) {
			continue
		}
		for _, p := range strings.Split(m[1], ",") {
			p = strings.ToUpper(strings.TrimSpace(p))
			if p == "ALL" || p == "ALL PRIVILEGES" {
				for _, n := range neededPrivs {
					have[n] = true
				}
				continue
			}
			have[p] = true
		}
	}
	var missing []string
	for _, n := range neededPrivs {
		if !have[n] {
			missing = append(missing, n)
		}
	}
	return missing
}

// likeMatch applies a grant's database pattern (LIKE syntax: % and _,
// backslash escapes) to name.
func likeMatch(pat, name string) bool {
	var re strings.Builder
	re.WriteString("(?i)^")
	for i := 0; i < len(pat); i++ {
		switch c := pat[i]; c {
		case '\\':
			if i+1 < len(pat) {
				i++
				re.WriteString(regexp.QuoteMeta(string(pat[i])))
			}
		case '%':
			re.WriteString(".*")
		case '_':
			re.WriteString(".")
		default:
			re.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	re.WriteString("$")
	ok, _ := regexp.MatchString(re.String(), name)
	return ok
}
