// Package config reads pbx-agent's voipmonitor.conf-style INI file.
//
// Option names follow voipmonitor.conf wherever the meaning is the same
// (spec/voipmonitor.md §5); the agent's own options (http_bind, ami_*, cdr_*)
// sit beside them in the same [general] section. Unknown keys and bad values
// are reported with file:line and a hint; command-line flags override the file.
package config

import (
	"bufio"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
	"gopkg.in/ini.v1"

	"pbx-agent/agent/dbconn"
)

// DefaultPath is where the daemon looks for its config without -config.
const DefaultPath = "/etc/pbx-agent/pbx-agent.conf"

// PortRange is an inclusive range of ports; a single port has Lo == Hi.
type PortRange struct{ Lo, Hi uint16 }

// Contains reports whether p lies in the range.
func (r PortRange) Contains(p uint16) bool { return p >= r.Lo && p <= r.Hi }

// Config is the whole agent configuration. The zero value is not useful; use
// Default or Load.
type Config struct {
	// Capture (voipmonitor.conf names).
	Interface     []string    // interface: capture NICs; empty = none (replay only)
	SIPPorts      []PortRange // sipport: ports that are always SIP
	SIPDetect     bool        // sip_detect: also find SIP by its content on any port (default yes)
	Deduplicate   bool        // deduplicate: a packet captured twice is handled once (always with several interfaces)
	VXLANPort     int         // udp_port_vxlan: UDP port of VXLAN (default 4789)
	RingBufferMB  int         // ringbuffer: AF_PACKET ring size in MB
	CaptureFanout int         // capture_fanout: AF_PACKET fanout group (0 = off)
	// Filter (filter): a pcap-filter expression the live capture keeps
	// frames by, run in the kernel; "" = none. As VoIPmonitor, -r files
	// are read whole.
	Filter     string
	RTPThreads int    // rtpthreads: media workers; 0 = the number of cores
	IDSensor   int    // id_sensor: 1-65535, -1 = unset
	SensorName string // sensor_name: name in the sensors table (default: host name)
	SpoolDir   string // spooldir
	SaveSIP    bool   // savesip
	SaveRTP    string // savertp: "no", "yes", "header"
	SaveAudio  string // saveaudio: "no", "wav", "ogg", "mp3"
	// SaveAudioStereo: caller left, callee right (saveaudio_stereo, default
	// yes); no mixes both into one channel.
	SaveAudioStereo bool
	SaveGraph       bool // savegraph: each RTP stream's quality per second, stored with the CDR (cdr_rtp_series)
	// The jitter-buffer simulators behind the MOS columns (VoIPmonitor's
	// jitterbuffer_f1, _f2, _adapt: yes or no; _f1_jbsize,
	// _f1_resync_threshold, _adapt_jbsize, _adapt_resync_threshold in ms).
	// One turned off leaves its MOS at 4.5 and costs nothing per packet.
	JitterF1, JitterF2, JitterAdapt    bool
	JitterF1Size, JitterF1Resync       int
	JitterAdaptSize, JitterAdaptResync int
	// MOSMinF2: mos_min_mult10 is the F2 MOS (mosmin_f2, default yes); no
	// makes it the lowest of the three.
	MOSMinF2 bool
	// SaveRTCP is savertcp: RTCP into the call's RTP pcap; nil (the key
	// absent) follows savertp (saved unless savertp = no).
	SaveRTCP *bool
	// Caller number from identity headers (passertedidentity,
	// ppreferredidentity, remotepartyid, remotepartypriority).
	PAssertedIdentity, PPreferredIdentity, RemotePartyID, RemotePartyPriority bool
	// DestinationNumberMode (destination_number_mode): 1 (default) takes
	// the called number from the INVITE's To header, 2 from its Request-URI.
	DestinationNumberMode int
	// LastDestNumber (last_dest_number, default no): the called number of
	// the caller's latest INVITE, not its first.
	LastDestNumber bool
	// SIPOverlap (sipoverlap, default yes): the called number of each
	// INVITE from the caller's IP (overlap dialling).
	SIPOverlap bool
	// UpdateDstnumOnAnswer (update_dstnum_onanswer, default no): the
	// called number of the forked INVITE branch the 2xx answers.
	UpdateDstnumOnAnswer bool
	// CallerNumberOnly (callernum_numberonly, default yes): an identity
	// header's URI with parameters and no host (<sip:+4930111;cpc=ordinary>)
	// gives the number before the ';'; no gives no number from it.
	CallerNumberOnly bool
	// CDROnlyAnswered, CDROnlyRTP (cdronlyanswered, cdronlyrtp): no CDR
	// for a call not answered / without RTP.
	CDROnlyAnswered, CDROnlyRTP bool
	// NATAliases (natalias lines): a call's media announced at a key's
	// address is also looked for at its value (same ports).
	NATAliases map[netip.Addr]netip.Addr
	// Call timeouts (rtptimeout, sipwithoutrtptimeout, absolute_timeout):
	// a call its signalling does not end is closed RTPTimeout after its last
	// packet once its media was seen, SIPOnlyTimeout after its first packet
	// when none was, and MaxCallDuration after its first packet in any case.
	RTPTimeout      time.Duration
	SIPOnlyTimeout  time.Duration
	MaxCallDuration time.Duration
	// OneWayTimeout (onewaytimeout, default 15 s): a call with no SIP
	// message from the other side is closed this long after its last
	// packet, bye 105.
	OneWayTimeout time.Duration
	// ResponseTimeFromFirstInvite: cdr.response_time_100 and _xxx count
	// from the call's first INVITE (response_time_from_first_invite,
	// default no: the quickest INVITE transaction's response).
	ResponseTimeFromFirstInvite bool
	// FaxDetect looks for the fax tones CNG and CED in G.711 audio and
	// marks such a call a T.30 fax, CDR payload 1001 (faxdetect, default
	// no as VoIPmonitor's).
	FaxDetect bool
	// IgnoreRTPAfterByeOK leaves the RTP a call's parties send after the
	// 2xx to its BYE out of its CDR's RTP columns
	// (ignore_rtp_after_bye_confirmed, default yes as VoIPmonitor's).
	IgnoreRTPAfterByeOK bool
	// IPv6 is VoIPmonitor's ipv6 (default no): yes creates the IP columns
	// as varbinary(16), which hold IPv6 and IPv4 addresses, and decodes
	// IPv6 packets; no keeps VoIPmonitor's int unsigned IPv4 columns and
	// ignores IPv6 packets, as VoIPmonitor does.
	IPv6 bool
	// UTC is VoIPmonitor's utc (alias sql_time_utc, default no): yes
	// writes database times and names spool directories in UTC; no uses
	// Location's local time (voipmonitor.cpp:969, :6350).
	UTC bool `json:",omitempty"`
	// Timezone is VoIPmonitor's timezone: the zone (a zoneinfo file path,
	// or a zone name) VoIPmonitor puts in TZ (voipmonitor.cpp:7897-7900);
	// "" = the process's own zone. It has no effect with utc = yes.
	Timezone string `json:",omitempty"`
	// Location is the zone of every time the agent writes to or reads from
	// the database and of the spool's date directories: UTC with utc =
	// yes, else timezone's zone, else time.Local. Parse sets it; a Config
	// not made by Parse (nil) means UTC.
	Location *time.Location `json:"-"` // machine-dependent (Local)
	zone     *time.Location // timezone's zone (nil = unset)
	// Compressed pcaps: pcap_dump_zip_sip/_rtp say whether the SIP and RTP
	// pcaps are written gzip-compressed (.pcap.gz), pcap_dump_ziplevel_sip/
	// _rtp at which level (1-9).
	PcapZipSIP, PcapZipRTP           bool
	PcapZipLevelSIP, PcapZipLevelRTP int
	SIPRegister                      bool // sip-register
	// REGISTER rules (VoIPmonitor's sip-register-timeout,
	// sip-register-max-registers, sip-register-max-messages,
	// sip-register-state-timeout (0: a state is never written again),
	// sip-register-timeout-disable_save_failed): see call.RegisterRules.
	RegisterTimeout         time.Duration
	RegisterMaxRegisters    int
	RegisterMaxMessages     int
	RegisterStateTimeout    time.Duration
	RegisterTimeoutNoFailed bool

	// CaptureBlockTimeout is the AF_PACKET ring's block retire timeout
	// (capture_block_timeout, tp_retire_blk_tov): the longest a captured
	// packet waits in a partly filled block before the agent sees it.
	CaptureBlockTimeout time.Duration
	// InterfaceFilters (interface_libpcap_filter lines, or entries
	// separated by ';'): each entry is a capture socket of its own on its
	// interface, keeping the frames of its expression ANDed with Filter
	// (CaptureExpr); an interface with entries has no other socket.
	InterfaceFilters []InterfaceFilter `json:",omitempty"`

	// Spool cleaning (voipmonitor.conf names; 0 = no limit): the oldest
	// minute directories go first.
	MaxPoolSizeMB      int           // maxpoolsize: MB of the whole spool
	MaxPoolDays        int           // maxpooldays
	MaxPoolSIPSizeMB   int           // maxpoolsipsize
	MaxPoolSIPDays     int           // maxpoolsipdays
	MaxPoolRTPSizeMB   int           // maxpoolrtpsize
	MaxPoolRTPDays     int           // maxpoolrtpdays
	MaxPoolAudioSizeMB int           // maxpoolaudiosize
	MaxPoolAudioDays   int           // maxpoolaudiodays
	CleanSpool         bool          // cleanspool: no = never clean, whatever the limits
	CleanSpoolInterval time.Duration // cleanspool_interval: between cleaning passes (0 = 5 min)
	NoCDR              bool          // nocdr
	// Sniffer is `sniffer`: false makes a web front end that captures
	// nothing and serves the web APIs, live listening and the manager API
	// for the sensors sharing its database until stopped.
	Sniffer bool

	// Many sensors, one database (agent's own).
	SensorHeartbeat    time.Duration // sensor_heartbeat: how often the sensors row is refreshed (0 = default 10 s)
	SensorOfflineAfter time.Duration // sensor_offline_after: heartbeat age after which a sensor is offline (0 = 3 heartbeats + 5 s)
	// SensorManagerKeys are the sensor_manager_key values, each
	// "<id_sensor>:<base64 key>:<base64 iv>" (checked here, parsed by
	// agent/sensors.ParseSensorKey): the manager key of one other sensor.
	SensorManagerKeys []string

	// MySQL (voipmonitor.conf names). An empty MySQLHost and MySQLSocket
	// mean "no database": the CDR store is off.
	MySQLHost     string
	MySQLPort     int
	MySQLSocket   string
	MySQLDB       string
	MySQLUsername string
	MySQLPassword string
	CDRPartition  bool // cdr_partition: daily partitions of cdr* tables
	// MySQLTLS is mysqlsslkey, mysqlsslcert, mysqlsslcacert,
	// mysqlsslcapath and mysqlsslciphers: TLS on every TCP connection to
	// the database (dbconn.TLS says when it is on and what is verified).
	MySQLTLS dbconn.TLS
	// MySQLTimezone is mysql_timezone: the time_zone every database
	// session of the agent is set to ("" = the server's default, or
	// +00:00 with utc = yes), as VoIPmonitor's SET time_zone
	// (sql_db.cpp:1900-1901).
	MySQLTimezone string `json:",omitempty"`
	// MySQLConnectTimeout is mysql_connect_timeout: how long opening a
	// connection may take (0 = no limit of the agent's own).
	MySQLConnectTimeout time.Duration
	// mysqlTLSName is the driver's name of MySQLTLS, registered by Parse.
	mysqlTLSName string

	// Database cleaning (voipmonitor.conf's cleandatabase family): days of
	// data kept, 0 = everything. CleanDatabase is cleandatabase, the
	// default of cdr, register_state, register_failed, register_time_info
	// and sip_msg; CleanDatabaseTable holds the cleandatabase_<table> keys
	// set, by <table>, and wins over it (CleanDays).
	CleanDatabase       int
	CleanDatabaseTable  map[string]int
	CleanDatabaseSizeMB int // cleandatabase_size: MB the database may hold, 0 = no limit
	// PartitionOpsFrom/To is partition_operations_enable_fromto (default 1-5):
	// the local hours in which the daily cleaning runs.
	PartitionOpsFrom, PartitionOpsTo int
	// DisablePartitionOps / DisablePartitionDrop: disable_partition_operations
	// and disable_partition_operations_drop: this sensor drops nothing.
	DisablePartitionOps, DisablePartitionDrop bool

	// CDR writer (agent's own).
	CDRQueueDir        string        // cdr_queue_dir: on-disk overflow queue (default spooldir/cdrqueue)
	CDRQueueSize       int           // cdr_queue_size: in-memory queue length (CDRs)
	CDRBatchSize       int           // cdr_batch_size: CDRs per INSERT transaction
	CDRFlushInterval   time.Duration // cdr_flush_interval: max wait before a partial batch is written
	CDRQueueMaxBytes   int64         // cdr_queue_max_mb: cap of the on-disk queue, 0 = no cap
	CDRUANormalisation bool          // cdr_ua_normalisation: store User-Agents without version numbers

	// Manager API (voipmonitor.conf names).
	ManagerIP                string
	ManagerPort              int
	ManagerSocket            string
	ManagerAESKey            string // base64
	ManagerAESIV             string // base64
	ManagerEnableUnencrypted bool
	ManagerConnsPerSource    int           // manager_max_conns_per_source (0 = default 16)
	ManagerFirstByteTimeout  time.Duration // manager_first_byte_timeout (0 = default 2 s)
	ManagerAESMaxFailures    int           // manager_aes_max_failures (0 = default 5)
	ManagerAESBlock          time.Duration // manager_aes_block (0 = default 15 min)

	// HTTP (agent's own).
	HTTPBind         string // http_bind
	HTTPTLSCert      string
	HTTPTLSKey       string
	APIDisableAuth   bool
	UsersFile        string
	MetricsBind      string   // metrics_bind: own listener for /metrics; empty = served by http_bind
	HTTPPublicURL    string   // http_public_url: scheme://host[:port] of share links
	HTTPAllowedHosts []string // http_allowed_hosts: names accepted in Host besides IPs and localhost

	// Asterisk (agent's own).
	AsteriskManagerConf string
	AMIHost             string
	AMIPort             int
	AMIUser             string
	AMISecret           string
	AMIAuthMD5          bool // ami_auth = md5: Challenge/MD5 login instead of a plain Secret

	// HEP input (VoIPmonitor's hep, hep_bind_ip, hep_bind_port,
	// hep_bind_udp) and output (agent's own hep_destination*).
	HEP                     bool
	HEPBindIP               string
	HEPBindPort             int
	HEPBindUDP              bool
	HEPPassword             string
	HEPUseSystemTime        bool
	HEPDestination          string
	HEPDestinationTransport string
	HEPDestinationPassword  string
	HEPCaptureID            int
	HEPNodeName             string

	// Logging (agent's own).
	LogFormat string     // log_format: "text" or "json"
	LogLevel  slog.Level // log_level: debug, info, warn, error

	// Source records where each key came from, "file:line" or "flag".
	Source map[string]string
	// Ignored lists voipmonitor.conf keys that were accepted but have no
	// effect in pbx-agent ("file:line: key"), for a warning at start-up
	// (NoEffectWarning).
	Ignored []string
	// Warnings are problems Check found that the daemon survives (it
	// warns about them too); check-config prints them and exits 0.
	Warnings []string
	// Path is the file the config was read from ("" when none).
	Path string
}

// Default returns the configuration used for keys the file does not set.
func Default() *Config {
	return &Config{
		SIPPorts:              []PortRange{{5060, 5060}},
		SIPDetect:             true,
		VXLANPort:             4789,
		RingBufferMB:          64,
		CaptureBlockTimeout:   4 * time.Millisecond,
		IDSensor:              -1,
		SpoolDir:              "/var/spool/pbx-agent",
		SaveSIP:               true,
		SaveAudioStereo:       true,
		SaveRTP:               "yes",
		SaveAudio:             "no",
		SaveGraph:             true,              // as VoIPmonitor's sample config
		RTPTimeout:            300 * time.Second, // VoIPmonitor's defaults
		SIPOnlyTimeout:        time.Hour,
		MaxCallDuration:       4 * time.Hour,
		OneWayTimeout:         15 * time.Second,
		DestinationNumberMode: 1,
		SIPOverlap:            true, // VoIPmonitor's default
		CallerNumberOnly:      true,
		JitterF1:              true, // VoIPmonitor's defaults
		JitterF2:              true,
		JitterAdapt:           true,
		JitterF1Size:          50,
		JitterF1Resync:        100,
		JitterAdaptSize:       500,
		JitterAdaptResync:     500,
		MOSMinF2:              true,
		IgnoreRTPAfterByeOK:   true, // VoIPmonitor's default
		PcapZipSIP:            true,
		PcapZipRTP:            true,
		PcapZipLevelSIP:       6, // VoIPmonitor's defaults
		PcapZipLevelRTP:       1,
		SIPRegister:           true,
		CleanSpool:            true,
		Sniffer:               true,
		MySQLPort:             3306,
		MySQLDB:               "voipmonitor",
		MySQLConnectTimeout:   5 * time.Second,
		MySQLUsername:         "root",
		CDRQueueSize:          10000,
		CDRBatchSize:          200,
		CDRFlushInterval:      250 * time.Millisecond,
		CDRUANormalisation:    true,
		PartitionOpsFrom:      1, // VoIPmonitor's partition_operations_enable_fromto
		PartitionOpsTo:        5,
		ManagerIP:             "127.0.0.1",
		ManagerPort:           5029,

		// VoIPmonitor's REGISTER defaults (voipmonitor.cpp:659-662, 683)
		RegisterTimeout: 5 * time.Second, RegisterMaxRegisters: 4, RegisterMaxMessages: 20,
		RegisterStateTimeout: 600 * time.Second,

		HTTPBind:            "127.0.0.1:8080",
		AsteriskManagerConf: "/etc/asterisk/manager.conf",
		AMIPort:             5038,
		HEPBindIP:           "127.0.0.1",
		HEPBindPort:         9060,
		HEPBindUDP:          true,
		LogFormat:           "text",
		LogLevel:            slog.LevelInfo,
		Source:              map[string]string{},
	}
}

// location is the zone of stored times: UTC with utc = yes (VoIPmonitor's
// conv_tz in tools.h:3349-3357 takes gmtime_r whenever opt_sql_time_utc),
// else timezone's zone, else the process's own (TZ or /etc/localtime, as
// localtime_r reads it).
func (c *Config) location() *time.Location {
	switch {
	case c.UTC:
		return time.UTC
	case c.zone != nil:
		return c.zone
	}
	return time.Local
}

// ZoneName names the zone of stored times as VoIPmonitor names it in
// sensors.timezone_name (sql_db.cpp:9208-9220): "UTC" with utc = yes; else
// the zone's name (timezone's path below zoneinfo/, as getSystemTimezone
// in tools.cpp:8930 reads /etc/localtime's link); for the process's own
// zone TZ, /etc/localtime's link or /etc/timezone; "" when none of them
// names it (the caller then uses the abbreviation, as VoIPmonitor's
// tm_zone).
func (c *Config) ZoneName() string {
	loc := c.TimeLocation()
	switch {
	case loc == time.UTC:
		return "UTC"
	case loc != time.Local:
		return loc.String()
	}
	if tz := strings.TrimPrefix(os.Getenv("TZ"), ":"); tz != "" {
		return zoneinfoName(tz)
	}
	if l, err := os.Readlink("/etc/localtime"); err == nil && strings.Contains(l, "zoneinfo/") {
		return zoneinfoName(l)
	}
	if b, err := os.ReadFile("/etc/timezone"); err == nil {
		return strings.ReplaceAll(strings.TrimSpace(string(b)), " ", "_")
	}
	return ""
}

// TimeLocation is Location, or UTC for a Config not made by Parse.
func (c *Config) TimeLocation() *time.Location {
	if c.Location == nil {
		return time.UTC
	}
	return c.Location
}

// DatabaseEnabled reports whether a MySQL server is configured and CDRs are wanted.
func (c *Config) DatabaseEnabled() bool {
	return !c.NoCDR && (c.MySQLHost != "" || c.MySQLSocket != "")
}

// MySQLDSN returns the go-sql-driver/mysql DSN for the configured server:
// the unix socket when mysqlsocket is set, else TCP mysqlhost:mysqlport, or
// for a list of nodes in mysqlhost a DSN on dbconn.Net (open it with
// dbconn.Open for failover). A TCP DSN carries the mysqlssl* TLS
// settings (tls=, registered with the driver); a unix socket is local and
// stays without TLS.
func (c *Config) MySQLDSN() string {
	mc := mysql.NewConfig()
	mc.User = c.MySQLUsername
	mc.Passwd = c.MySQLPassword
	mc.DBName = c.MySQLDB
	if c.MySQLSocket != "" {
		mc.Net = "unix"
		mc.Addr = c.MySQLSocket
	} else {
		mc.Net = "tcp"
		mc.Addr = net.JoinHostPort(c.MySQLHost, strconv.Itoa(c.MySQLPort))
		if hosts, err := dbconn.Hosts(c.MySQLHost, c.MySQLPort); err == nil && len(hosts) > 1 {
			mc.Net, mc.Addr = dbconn.Net, strings.Join(hosts, ",")
		} else if err == nil {
			mc.Addr = hosts[0]
		}
		mc.TLSConfig = c.tlsName()
	}
	if c.MySQLTimezone != "" {
		mc.Params = map[string]string{"time_zone": "'" + c.MySQLTimezone + "'"}
	}
	mc.Timeout = c.MySQLConnectTimeout
	mc.ReadTimeout = 30 * time.Second
	mc.WriteTimeout = 30 * time.Second
	return mc.FormatDSN()
}

// unregisteredTLS names no driver TLS configuration: a DSN carrying it
// fails to open, which is what TLS settings that no longer load must do
// (never a connection in clear).
const unregisteredTLS = "pbx-agent-tls-unusable"

// tlsName is the driver's name of the TLS settings, "" without TLS.
func (c *Config) tlsName() string {
	if !c.MySQLTLS.Enabled() {
		return ""
	}
	if c.mysqlTLSName == "" { // a Config not made by Parse
		name, err := dbconn.RegisterTLS(c.MySQLTLS)
		if err != nil {
			return unregisteredTLS
		}
		c.mysqlTLSName = name
	}
	return c.mysqlTLSName
}

// cleanByGeneral are the tables cleandatabase sets (voipmonitor.cpp
// cConfig::evSetConfigItem); cleandatabase_rtp_stat and
// cleandatabase_cdr_rtp_energylevels only have their own key.
var cleanByGeneral = map[string]bool{"cdr": true, "register_state": true, "register_failed": true, "register_time_info": true, "sip_msg": true}

// CleanDays is the days of data kept in table ("cdr", "sip_msg", … as in
// cleandatabase_<table>), 0 = everything: its own key when set, else
// cleandatabase for the tables that key covers. As in VoIPmonitor the own
// key wins whatever the order in the file (its keys are applied sorted).
func (c *Config) CleanDays(table string) int {
	if n, ok := c.CleanDatabaseTable[table]; ok {
		return n
	}
	if cleanByGeneral[table] {
		return c.CleanDatabase
	}
	return 0
}

// QueueDir is cdr_queue_dir, defaulting to <spooldir>/cdrqueue.
func (c *Config) QueueDir() string {
	if c.CDRQueueDir != "" {
		return c.CDRQueueDir
	}
	return filepath.Join(c.SpoolDir, "cdrqueue")
}

// Load reads the INI file at path (skipped when path is "") and applies flags
// on top: flags maps config key names (as in the file) to values. Every
// problem found is returned, joined, as *Error values carrying file:line.
func Load(path string, flags map[string]string) (*Config, error) {
	var raw []byte
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrRead, err)
		}
		raw = b
	}
	return Parse(path, raw, flags)
}

// Parse is Load on bytes already read; name is used in error locations.
func Parse(name string, raw []byte, flags map[string]string) (*Config, error) {
	c := Default()
	c.Path = name
	var errs []error
	if raw != nil {
		errs = append(errs, c.parseINI(name, raw)...)
	}
	keys := make([]string, 0, len(flags))
	for k := range flags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		// A flag replaces the file's value, also for keys that may repeat.
		if opt, ok := options[strings.ToLower(strings.TrimSpace(k))]; ok && opt.reset != nil {
			opt.reset(c)
		}
		if err := c.set("flag", 0, k, []string{flags[k]}); err != nil {
			errs = append(errs, err)
		}
	}
	errs = append(errs, c.validate()...)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	c.Location = c.location()
	return c, nil
}

func (c *Config) parseINI(path string, raw []byte) []error {
	f, err := ini.LoadSources(ini.LoadOptions{
		AllowShadows:             true,
		SpaceBeforeInlineComment: true,
		AllowBooleanKeys:         true,
	}, raw)
	if err != nil {
		return []error{fmt.Errorf("%w: %s: %w", ErrRead, path, err)}
	}
	lines := keyLines(raw)
	var errs []error
	for _, sec := range f.Sections() {
		name := sec.Name()
		if name != ini.DefaultSection && !strings.EqualFold(name, "general") {
			if len(sec.Keys()) > 0 {
				errs = append(errs, &Error{File: path, Line: lines.section[strings.ToLower(name)], Key: "[" + name + "]",
					Err: ErrUnknownKey, Msg: "unknown section", Hint: "put every option under [general]"})
			}
			continue
		}
		for _, k := range sec.Keys() {
			key := strings.ToLower(k.Name())
			line := lines.key[key]
			if opt, ok := options[key]; ok && opt.asWritten {
				for _, w := range lines.written[key] {
					if err := c.set(path, w.line, key, []string{w.value}); err != nil {
						errs = append(errs, err)
					}
				}
				continue
			}
			if err := c.set(path, line, key, k.ValueWithShadows()); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errs
}

// lineIndex maps keys and sections to the line of their (last)
// occurrence; written holds the values of the asWritten options as the
// file's [general] lines have them, in order.
type lineIndex struct {
	key, section map[string]int
	written      map[string][]writtenValue
}

// writtenValue is one line's value of an asWritten option.
type writtenValue struct {
	line  int
	value string
}

func keyLines(raw []byte) lineIndex {
	idx := lineIndex{key: map[string]int{}, section: map[string]int{}, written: map[string][]writtenValue{}}
	sc := bufio.NewScanner(strings.NewReader(string(raw)))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	n := 0
	section := "general"
	for sc.Scan() {
		n++
		s := strings.TrimSpace(sc.Text())
		if s == "" || s[0] == '#' || s[0] == ';' {
			continue
		}
		if s[0] == '[' {
			section = strings.ToLower(strings.Trim(s, "[] \t"))
			idx.section[section] = n
			continue
		}
		k, v := s, ""
		if i := strings.IndexAny(s, "=:"); i >= 0 {
			k, v = s[:i], s[i+1:]
		}
		k = strings.ToLower(strings.TrimSpace(k))
		idx.key[k] = n
		if opt, ok := options[k]; ok && opt.asWritten && section == "general" {
			if i := strings.Index(v, " #"); i >= 0 {
				v = v[:i]
			}
			idx.written[k] = append(idx.written[k], writtenValue{n, v})
		}
	}
	return idx
}

func (c *Config) set(file string, line int, key string, vals []string) error {
	key = strings.ToLower(strings.TrimSpace(key))
	opt, ok := options[key]
	if !ok {
		if _, ign := noEffect[key]; ign {
			c.Ignored = append(c.Ignored, fmt.Sprintf("%s: %s", loc(file, line), key))
			return nil
		}
		e := &Error{File: file, Line: line, Key: key, Err: ErrUnknownKey, Msg: "unknown key"}
		if s := suggest(key); s != "" {
			e.Hint = fmt.Sprintf("did you mean %q?", s)
		}
		return e
	}
	if len(vals) == 0 {
		vals = []string{""} // "key =" sets the empty value (e.g. http_bind = turns HTTP off)
	}
	if !opt.multi && len(vals) > 1 {
		vals = vals[len(vals)-1:] // last one wins, as in voipmonitor.conf
	}
	for _, v := range vals {
		v = strings.TrimSpace(v)
		if err := opt.set(c, v); err != nil {
			return &Error{File: file, Line: line, Key: key, Err: ErrBadValue,
				Msg: badValue(key, v, err), Hint: opt.hint}
		}
	}
	c.Source[key] = loc(file, line)
	return nil
}

// badValue describes a refused value, without the value itself for keys
// holding secrets (nor the parser's message, which may quote it).
func badValue(key, v string, err error) string {
	if secretKeys[key] {
		return fmt.Sprintf("bad value (%d characters, not shown: it is secret): %s", len(v), secretReason(err))
	}
	return fmt.Sprintf("bad value %q: %v", v, err)
}

// secretReason keeps the parser's message only when it is one of the
// fixed texts that quote nothing.
func secretReason(err error) string {
	msg := err.Error()
	if strings.ContainsAny(msg, "\"'`") {
		return "not in the expected form"
	}
	return msg
}

func loc(file string, line int) string {
	if line > 0 {
		return fmt.Sprintf("%s:%d", file, line)
	}
	return file
}

// maxFixedJitter bounds a fixed jitter buffer's size plus its resync
// threshold (ms): what the simulated buffer holds of 10-ms frames.
const maxFixedJitter = 480

// validate checks relations between keys after everything is set.
func (c *Config) validate() []error {
	var errs []error
	bad := func(key, msg, hint string) {
		f, l := c.where(key)
		errs = append(errs, &Error{File: f, Line: l, Key: key, Err: ErrBadValue, Msg: msg, Hint: hint})
	}
	if (c.ManagerAESKey == "") != (c.ManagerAESIV == "") {
		k := "manager_aes_iv"
		if c.ManagerAESKey == "" {
			k = "manager_aes_key"
		}
		bad(k, "manager_aes_key and manager_aes_iv must be set together", "run `pbx-agent gen-aes-key` for a pair")
	}
	if c.JitterF1Size+c.JitterF1Resync > maxFixedJitter {
		bad("jitterbuffer_f1_resync_threshold", fmt.Sprintf("jitterbuffer_f1_jbsize + jitterbuffer_f1_resync_threshold is %d ms, above %d",
			c.JitterF1Size+c.JitterF1Resync, maxFixedJitter), "the simulated fixed buffer holds 48 frames: 480 ms of 10-ms frames")
	}
	if (c.HTTPTLSCert == "") != (c.HTTPTLSKey == "") {
		bad("http_tls_key", "http_tls_cert and http_tls_key must be set together", "")
	}
	errs = append(errs, c.validateInterfaceFilters()...)
	errs = append(errs, c.validateMySQLTLS()...)
	return errs
}

// validateMySQLTLS loads the mysqlssl* files and registers the TLS
// configuration with the driver; what VoIPmonitor ignores (half a key pair,
// ciphers without TLS) becomes a warning.
func (c *Config) validateMySQLTLS() []error {
	t := c.MySQLTLS
	warn := func(key, msg string) {
		f, l := c.where(key)
		c.Warnings = append(c.Warnings, (&Error{File: f, Line: l, Key: key, Msg: msg}).Error())
	}
	const off = "; TLS to MySQL stays off: it needs mysqlsslcacert, mysqlsslcapath, or mysqlsslcert with mysqlsslkey"
	if (t.Key == "") != (t.Cert == "") {
		k, other := "mysqlsslkey", "mysqlsslcert"
		if t.Key == "" {
			k, other = other, k
		}
		msg := "ignored without " + other + ": no client certificate is sent (as in VoIPmonitor)"
		if !t.Enabled() {
			msg += off
		}
		warn(k, msg)
	}
	if !t.Enabled() {
		if t.Ciphers != "" {
			warn("mysqlsslciphers", "no effect alone (as in VoIPmonitor)"+off)
		}
		return nil
	}
	name, err := dbconn.RegisterTLS(t)
	if err != nil {
		key := "mysqlsslcacert"
		var te *dbconn.TLSError
		if errors.As(err, &te) {
			key = "mysqlssl" + te.Setting
		}
		f, l := c.where(key)
		hint := "PEM files readable by the agent; the key must be mysqlsslcert's"
		if key == "mysqlsslciphers" {
			hint = "TLS 1.2 suites in OpenSSL's spelling, separated by ':'"
		}
		return []error{&Error{File: f, Line: l, Key: key, Err: ErrBadValue, Msg: err.Error(), Hint: hint}}
	}
	c.mysqlTLSName = name
	return nil
}

// NoEffectWarning is the one start-up warning about accepted keys that do
// nothing here (the daemon and check-config print the same text), or "".
func (c *Config) NoEffectWarning() string {
	if len(c.Ignored) == 0 {
		return ""
	}
	keys := make([]string, 0, len(c.Ignored))
	seen := map[string]bool{}
	for _, ign := range c.Ignored {
		k := ign[strings.LastIndex(ign, " ")+1:]
		if !seen[k] {
			seen[k] = true
			keys = append(keys, k)
		}
	}
	return fmt.Sprintf("%d voipmonitor.conf keys accepted but without effect in pbx-agent: %s", len(keys), strings.Join(keys, ", "))
}
