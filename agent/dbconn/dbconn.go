// Package dbconn opens the agent's MySQL connection pools, over one server or
// over a list of cluster nodes (mysqlhost = node1,node2:3307,…) with failover.
//
// A list is tried in order. The pool stays on the first node that answers
// until that node fails (connection refused or lost, or a Galera node that is
// no longer a synced member of the primary component); then every pooled
// connection to it is dropped and new ones go to the next node of the list,
// wrapping around. There is no automatic fail-back: a node that comes back is
// used again when the one in use fails.
//
// The node list travels inside the ordinary go-sql-driver DSN, with the
// network name Net: "user:pass@nodes(h1:3306,h2:3306)/db". Open builds the
// failover pool from it; plain sql.Open("mysql", dsn) also works (the package
// registers Net with the driver) but only fails over when dialling.
package dbconn

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/go-sql-driver/mysql"
)

// Net is the DSN network name of a node list.
const Net = "nodes"

func init() {
	mysql.RegisterDialContext(Net, func(ctx context.Context, addr string) (net.Conn, error) {
		var errs []error
		var d net.Dialer
		for _, h := range strings.Split(addr, ",") {
			c, err := d.DialContext(ctx, "tcp", h)
			if err == nil {
				return c, nil
			}
			errs = append(errs, err)
			if ctx.Err() != nil {
				break
			}
		}
		return nil, fmt.Errorf("%w: %w", ErrNoNode, errors.Join(errs...))
	})
}

// Hosts parses mysqlhost: a host, host:port, or a comma-separated list of
// them ([v6]:port for IPv6 with a port). Entries without a port get
// defaultPort. It returns host:port strings in the given order.
func Hosts(list string, defaultPort int) ([]string, error) {
	var out []string
	for _, e := range strings.Split(list, ",") {
		e = strings.TrimSpace(e)
		if e == "" {
			continue
		}
		hp, err := hostPort(e, defaultPort)
		if err != nil {
			return nil, err
		}
		out = append(out, hp)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: no host in %q", ErrAddress, list)
	}
	return out, nil
}

func hostPort(e string, defaultPort int) (string, error) {
	withPort := strings.HasPrefix(e, "[") && strings.Contains(e, "]:") ||
		!strings.HasPrefix(e, "[") && strings.Count(e, ":") == 1
	if !withPort { // a name, an IPv4 address, or an IPv6 address without port
		h := e
		if strings.HasPrefix(h, "[") {
			if !strings.HasSuffix(h, "]") {
				return "", fmt.Errorf("%w: %q", ErrAddress, e)
			}
			h = h[1 : len(h)-1]
		}
		if h == "" || strings.ContainsAny(h, "[] ") {
			return "", fmt.Errorf("%w: %q", ErrAddress, e)
		}
		return net.JoinHostPort(h, strconv.Itoa(defaultPort)), nil
	}
	h, p, err := net.SplitHostPort(e)
	if err != nil {
		return "", fmt.Errorf("%w: %q: %w", ErrAddress, e, err)
	}
	n, err := strconv.Atoi(p)
	if err != nil || n < 1 || n > 65535 || h == "" || strings.ContainsAny(h, "[] ") {
		return "", fmt.Errorf("%w: %q: want host:port with a port 1-65535", ErrAddress, e)
	}
	return net.JoinHostPort(h, p), nil
}

// Open returns a connection pool for dsn (go-sql-driver/mysql format). A DSN
// whose network is Net gets the failover pool described in the package doc;
// any other DSN is the driver's own pool. A login refused for want of TLS
// gives ErrTLSRequired (or ErrDeniedWithoutTLS, MariaDB's ambiguous
// answer, for any denied login without TLS). logger (nil = none) hears of each
// switch to another node.
func Open(dsn string, logger *slog.Logger) (*sql.DB, error) {
	mc, err := mysql.ParseDSN(dsn)
	if err != nil {
		return nil, fmt.Errorf("dbconn: bad DSN: %w", err)
	}
	return OpenConfig(mc, logger)
}

// OpenConfig is Open on a parsed DSN, for settings a DSN string cannot
// carry (a Loc read from a zoneinfo file has no name LoadLocation knows).
func OpenConfig(mc *mysql.Config, logger *slog.Logger) (*sql.DB, error) {
	if mc.Net != Net {
		c, err := mysql.NewConnector(mc)
		if err != nil {
			return nil, fmt.Errorf("dbconn: %w", err)
		}
		return sql.OpenDB(annotated{c, mc.TLS != nil}), nil
	}
	c, err := newConnector(mc, logger)
	if err != nil {
		return nil, err
	}
	return sql.OpenDB(c), nil
}

// annotated is the driver's connector with connection errors annotated.
type annotated struct {
	driver.Connector
	tls bool // the connections use TLS
}

func (a annotated) Connect(ctx context.Context) (driver.Conn, error) {
	c, err := a.Connector.Connect(ctx)
	return c, annotate(err, a.tls)
}

// connector tries the nodes in order from the one in use.
type connector struct {
	hosts []string
	nodes []driver.Connector
	cur   atomic.Int32 // index of the node in use
	log   *slog.Logger
	tls   bool // the connections use TLS
}

func newConnector(mc *mysql.Config, logger *slog.Logger) (*connector, error) {
	hosts, err := Hosts(mc.Addr, 3306)
	if err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	c := &connector{hosts: hosts, log: logger.With("component", "dbconn"), tls: mc.TLS != nil}
	for _, h := range hosts {
		nc := mc.Clone()
		nc.Net, nc.Addr = "tcp", h
		conn, err := mysql.NewConnector(nc)
		if err != nil {
			return nil, fmt.Errorf("dbconn: %s: %w", h, err)
		}
		c.nodes = append(c.nodes, conn)
	}
	return c, nil
}

func (c *connector) Driver() driver.Driver { return c.nodes[0].Driver() }

// Connect opens a connection to the node in use, or to the next one that
// answers and is ready, which then becomes the node in use.
func (c *connector) Connect(ctx context.Context) (driver.Conn, error) {
	start := int(c.cur.Load())
	var errs []error
	for i := range c.hosts {
		idx := (start + i) % len(c.hosts)
		conn, err := c.nodes[idx].Connect(ctx)
		if err == nil {
			if err = ready(ctx, conn); err != nil {
				conn.Close()
			}
		}
		if err == nil {
			if idx != start && c.cur.CompareAndSwap(int32(start), int32(idx)) {
				c.log.Warn("MySQL node switched", "from", c.hosts[start], "to", c.hosts[idx], "cause", errors.Join(errs...))
			}
			return &nodeConn{c: c, idx: idx, inner: conn}, nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", c.hosts[idx], annotate(err, c.tls)))
		if ctx.Err() != nil {
			break
		}
	}
	return nil, fmt.Errorf("%w: %w", ErrNoNode, errors.Join(errs...))
}

// ready checks a new connection: a Galera node (wsrep_on) must be a synced
// member of the primary component (wsrep_ready); any other server is ready.
func ready(ctx context.Context, conn driver.Conn) error {
	q, ok := conn.(driver.QueryerContext)
	if !ok {
		return nil
	}
	on, err := show(ctx, q, "SHOW VARIABLES LIKE 'wsrep_on'")
	if err != nil || on != "ON" {
		return err
	}
	v, err := show(ctx, q, "SHOW STATUS LIKE 'wsrep_ready'")
	if err == nil && v != "ON" {
		err = fmt.Errorf("%w: wsrep_ready = %s", ErrNotReady, v)
	}
	return err
}

// show returns the value column of a one-row SHOW, "" when there is no row.
func show(ctx context.Context, q driver.QueryerContext, stmt string) (string, error) {
	rows, err := q.QueryContext(ctx, stmt, nil)
	if err != nil {
		return "", err
	}
	defer rows.Close()
	v := make([]driver.Value, len(rows.Columns()))
	if len(v) != 2 || rows.Next(v) != nil {
		return "", nil
	}
	return fmt.Sprintf("%s", v[1]), nil
}

// failed is called when a connection to node idx broke: the next node of
// the list becomes the node in use (unless another connection moved on
// already).
func (c *connector) failed(idx int, err error) {
	next := (idx + 1) % len(c.hosts)
	if c.cur.CompareAndSwap(int32(idx), int32(next)) {
		c.log.Warn("MySQL node failed; trying the next", "node", c.hosts[idx], "next", c.hosts[next], "err", err)
	}
}

// nodeFailure reports errors that mean the node, not the statement, failed.
func nodeFailure(err error) bool {
	if err == nil {
		return false
	}
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		// 1047: Galera "WSREP has not yet prepared node for application use";
		// 1053: server shutdown in progress.
		return me.Number == 1047 || me.Number == 1053
	}
	var ne net.Error
	return errors.Is(err, driver.ErrBadConn) || errors.Is(err, mysql.ErrInvalidConn) || errors.As(err, &ne)
}

// nodeConn is a connection to one node; it forwards to the driver's
// connection, watching errors, and stops being valid for the pool once its
// node is no longer the one in use.
type nodeConn struct {
	c     *connector
	idx   int
	inner driver.Conn
	inTx  bool
}

func (n *nodeConn) check(err error) error {
	if nodeFailure(err) {
		n.c.failed(n.idx, err)
	}
	return err
}

func (n *nodeConn) Prepare(query string) (driver.Stmt, error) {
	s, err := n.inner.Prepare(query)
	return s, n.check(err)
}

func (n *nodeConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	s, err := n.inner.(driver.ConnPrepareContext).PrepareContext(ctx, query)
	return s, n.check(err)
}

func (n *nodeConn) Close() error { return n.inner.Close() }

func (n *nodeConn) Begin() (driver.Tx, error) {
	return n.BeginTx(context.Background(), driver.TxOptions{})
}

func (n *nodeConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	tx, err := n.inner.(driver.ConnBeginTx).BeginTx(ctx, opts)
	if err != nil {
		return nil, n.check(err)
	}
	n.inTx = true
	return &nodeTx{n: n, inner: tx}, nil
}

func (n *nodeConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	r, err := n.inner.(driver.ExecerContext).ExecContext(ctx, query, args)
	return r, n.check(err)
}

func (n *nodeConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	r, err := n.inner.(driver.QueryerContext).QueryContext(ctx, query, args)
	if n.check(err) != nil && nodeFailure(err) && !n.inTx && readOnly(query) && ctx.Err() == nil {
		// A read outside a transaction may run again: database/sql retries
		// it on a new connection, which goes to the next node.
		return nil, driver.ErrBadConn
	}
	return r, err
}

// readOnly reports statements that change nothing (SELECT, SHOW).
func readOnly(query string) bool {
	q := strings.TrimLeft(query, " \t\r\n(")
	return len(q) >= 4 && (strings.EqualFold(q[:4], "SHOW") || len(q) >= 6 && strings.EqualFold(q[:6], "SELECT") && !strings.Contains(strings.ToUpper(q), " FOR UPDATE"))
}

func (n *nodeConn) Ping(ctx context.Context) error {
	return n.check(n.inner.(driver.Pinger).Ping(ctx))
}

func (n *nodeConn) ResetSession(ctx context.Context) error {
	if !n.IsValid() {
		return driver.ErrBadConn
	}
	return n.inner.(driver.SessionResetter).ResetSession(ctx)
}

// IsValid is false once the pool has moved to another node: the pool then
// closes this connection instead of reusing it.
func (n *nodeConn) IsValid() bool {
	return int(n.c.cur.Load()) == n.idx && n.inner.(driver.Validator).IsValid()
}

func (n *nodeConn) CheckNamedValue(nv *driver.NamedValue) error {
	return n.inner.(driver.NamedValueChecker).CheckNamedValue(nv)
}

type nodeTx struct {
	n     *nodeConn
	inner driver.Tx
}

func (t *nodeTx) Commit() error {
	t.n.inTx = false
	return t.n.check(t.inner.Commit())
}

func (t *nodeTx) Rollback() error {
	t.n.inTx = false
	return t.n.check(t.inner.Rollback())
}
