package dbconn

import "errors"

var (
	// ErrNoNode is returned when no node of a list answered (each node's
	// error is joined to it).
	ErrNoNode = errors.New("dbconn: no MySQL node reachable")
	// ErrAddress is returned for an empty or malformed node list.
	ErrAddress = errors.New("dbconn: bad MySQL node address")
	// ErrNotReady is returned for a Galera node that answers but is not a
	// synced member of the primary component (wsrep_ready = OFF).
	ErrNotReady = errors.New("dbconn: Galera node not ready")
	// ErrTimeZone is returned when the server refuses the session
	// time_zone mysql_timezone names (a zone name without the server's
	// time zone tables, or an offset outside its range).
	ErrTimeZone = errors.New("dbconn: the MySQL server refuses mysql_timezone: load its time zone tables (mysql_tzinfo_to_sql) or use an offset such as +02:00")
)

var (
	// ErrTLS is returned for TLS settings that cannot be used (see TLSError).
	ErrTLS = errors.New("dbconn: bad MySQL TLS setting")
	// ErrCipher is returned for a cipher name that cannot be used.
	ErrCipher = errors.New("unknown or unsupported cipher")
	// ErrTLSVerify is returned when the server's certificate does not
	// verify against the configured CA.
	ErrTLSVerify = errors.New("dbconn: MySQL server certificate not trusted by mysqlsslcacert/mysqlsslcapath")
	// ErrTLSRequired is returned when the server refuses a connection
	// without TLS (require_secure_transport, REQUIRE SSL).
	ErrTLSRequired = errors.New("dbconn: the MySQL server requires TLS: set mysqlsslcacert (or mysqlsslcapath, or mysqlsslcert + mysqlsslkey)")
	// ErrDeniedWithoutTLS is returned when a login without TLS is denied:
	// MariaDB answers so to a user with REQUIRE SSL and under
	// require_secure_transport, as to a wrong password.
	ErrDeniedWithoutTLS = errors.New("dbconn: access denied on a connection without TLS: wrong mysqlusername/mysqlpassword, or the server requires TLS (then set mysqlsslcacert, or mysqlsslcapath, or mysqlsslcert + mysqlsslkey)")
)
