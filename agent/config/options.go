package config

import (
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"pbx-agent/agent/dbconn"
	"pbx-agent/sniffer/capture"
)

// option describes one key: how to set it and what to tell the user when the
// value is wrong.
type option struct {
	set   func(c *Config, v string) error
	hint  string
	multi bool // may repeat; every occurrence is applied
	// asWritten: the values are the file's own lines, each with its line
	// number, not the INI reader's (which takes " ;" for the start of an
	// inline comment and merges equal lines); " #" still starts one.
	asWritten bool
	// reset clears a multi key's value, so a command-line flag replaces
	// what the file set instead of adding to it.
	reset func(c *Config)
}

// secretKeys hold key material or passwords: errors about them never show
// the value (check-config output ends up in tickets and chat).
var secretKeys = map[string]bool{"manager_aes_key": true, "manager_aes_iv": true, "sensor_manager_key": true,
	"mysqlpassword": true, "ami_secret": true, "hep_password": true, "hep_destination_password": true}

var errEmpty = errors.New("empty")

// options is read-only after package initialisation (a literal, no init()).
var options = map[string]option{
	"interface": {set: func(c *Config, v string) error {
		for _, s := range strings.Split(v, ",") {
			if s = strings.TrimSpace(s); s != "" {
				c.Interface = append(c.Interface, s)
			}
		}
		return nil
	}, hint: "a NIC name, a comma list, or any", multi: true, reset: func(c *Config) { c.Interface = nil }},
	"ringbuffer": {set: integer(1, 4096, func(c *Config) *int { return &c.RingBufferMB }), hint: "MB of the AF_PACKET ring, 1-4096 (VoIPmonitor's ringbuffer)"},
	"capture_block_timeout": {set: func(c *Config, v string) error {
		n, err := intRange(v, 1, 1000)
		c.CaptureBlockTimeout = time.Duration(n) * time.Millisecond
		return err
	}, hint: "ms a TPACKET_V3 ring block may wait before the agent sees its packets, 1-1000 (default 4; lower = less live-audio latency)"},
	"rtpthreads": {set: func(c *Config, v string) error {
		n, err := intRange(v, 0, 1024)
		c.RTPThreads = max(n, 1) // 0: VoIPmonitor's "no RTP threads"
		return err
	}, hint: "media workers, 0-1024 (default: the number of cores; 0 or 1 = one goroutine does everything): each call's RTP on one worker, SIP in capture order"},
	"savertcp": {set: func(c *Config, v string) error {
		var on bool
		err := boolean(func(*Config) *bool { return &on })(c, v)
		c.SaveRTCP = &on
		return err
	}, hint: "yes or no: RTCP packets into the call's RTP pcap (default: as savertp)"},
	"passertedidentity":   {set: boolean(func(c *Config) *bool { return &c.PAssertedIdentity }), hint: "yes or no: the caller's number, domain and name from P-Asserted-Identity when present"},
	"ppreferredidentity":  {set: boolean(func(c *Config) *bool { return &c.PPreferredIdentity }), hint: "yes or no: the caller from P-Preferred-Identity when present"},
	"remotepartyid":       {set: boolean(func(c *Config) *bool { return &c.RemotePartyID }), hint: "yes or no: the caller from Remote-Party-ID when present"},
	"remotepartypriority": {set: boolean(func(c *Config) *bool { return &c.RemotePartyPriority }), hint: "yes or no: Remote-Party-ID before P-Asserted-Identity and P-Preferred-Identity"},
	"destination_number_mode": {set: integer(1, 2, func(c *Config) *int { return &c.DestinationNumberMode }),
		hint: "1 (default): the called number from the INVITE's To header; 2: from its Request-URI"},
	"sipoverlap": {set: boolean(func(c *Config) *bool { return &c.SIPOverlap }),
		hint: "yes (default) or no: the called number of each INVITE from the caller's IP (overlap dialling), not only the first's"},
	"last_dest_number": {set: boolean(func(c *Config) *bool { return &c.LastDestNumber }),
		hint: "yes or no (default): the called number from the caller's latest INVITE (overlap dialling), not its first"},
	"update_dstnum_onanswer": {set: boolean(func(c *Config) *bool { return &c.UpdateDstnumOnAnswer }),
		hint: "yes or no (default): the called number of the forked INVITE (hunt group) the 200 OK answers"},
	"callernum_numberonly": {set: boolean(func(c *Config) *bool { return &c.CallerNumberOnly }),
		hint: "yes (default) or no: the caller's number of P-Asserted-Identity <sip:+4930111;cpc=ordinary> is +4930111, or none"},
	"cdronlyanswered": {set: boolean(func(c *Config) *bool { return &c.CDROnlyAnswered }), hint: "yes or no: store no CDR for a call that was not answered"},
	"cdronlyrtp":      {set: boolean(func(c *Config) *bool { return &c.CDROnlyRTP }), hint: "yes or no: store no CDR for a call without RTP"},
	"natalias": {set: func(c *Config, v string) error {
		from, to, err := natAlias(v)
		if err != nil {
			return err
		}
		if c.NATAliases == nil {
			c.NATAliases = map[netip.Addr]netip.Addr{}
		}
		c.NATAliases[from] = to
		return nil
	}, hint: "<address in the SDP> <address the media is seen on>, e.g. 203.0.113.5 10.0.0.5; one line per alias", multi: true,
		reset: func(c *Config) { c.NATAliases = nil }},
	"rtptimeout":           {set: seconds(func(c *Config) *time.Duration { return &c.RTPTimeout }), hint: "seconds without a packet after which a call whose RTP was seen is closed (default 300)"},
	"sipwithoutrtptimeout": {set: seconds(func(c *Config) *time.Duration { return &c.SIPOnlyTimeout }), hint: "seconds after its INVITE a call with no RTP seen is closed (default 3600)"},
	"onewaytimeout":        {set: seconds(func(c *Config) *time.Duration { return &c.OneWayTimeout }), hint: "seconds after its last packet a call with no SIP reply from the other side is closed, bye 105 (default 15)"},
	"absolute_timeout":     {set: seconds(func(c *Config) *time.Duration { return &c.MaxCallDuration }), hint: "seconds after its INVITE any call is closed (default 14400)"},
	"filter": {set: func(c *Config, v string) error {
		c.Filter = v
		_, err := capture.CompileFilter(v)
		return err
	}, hint: "a pcap-filter expression, e.g. not host 10.0.0.5 or udp or (tcp and port 5060): host, net, port, portrange, " +
		"src/dst, ip, ip6, udp, tcp, sctp, icmp, vlan [id], and/or/not, parentheses; live capture only (not -r)"},
	"interface_libpcap_filter": {set: func(c *Config, v string) error {
		fs, err := parseInterfaceFilters(v)
		c.InterfaceFilters = append(c.InterfaceFilters, fs...)
		return err
	}, hint: "<interface> : <pcap-filter expression>, one line per entry or entries separated by ';' (eth0 : port 5060; eth0 : not port 5060); " +
		"the interface must be in interface; each entry is a capture socket of its own, its expression ANDed with filter", multi: true, asWritten: true,
		reset: func(c *Config) { c.InterfaceFilters = nil }},
	"capture_fanout": {set: integer(0, 65535, func(c *Config) *int { return &c.CaptureFanout }), hint: "AF_PACKET fanout group id shared with other capture processes, 0 = off"},
	"sipport": {set: func(c *Config, v string) error {
		r, err := parsePorts(v)
		c.SIPPorts = r
		return err
	}, hint: "ports and ranges, e.g. 5060,5070-5080"},
	"deduplicate": {set: boolean(func(c *Config) *bool { return &c.Deduplicate }),
		hint: "yes or no (default): handle a packet captured twice (mirror + host, two interfaces) once; always on with several interfaces"},
	"udp_port_vxlan": {set: integer(1, 65535, func(c *Config) *int { return &c.VXLANPort }), hint: "the UDP port of VXLAN, 1-65535 (default 4789)"},
	"sip_detect": {set: boolean(func(c *Config) *bool { return &c.SIPDetect }),
		hint: "yes (default: SIP is found by its content on any UDP/TCP port) or no (only sipport ports)"},
	"id_sensor": {set: func(c *Config, v string) error {
		n, err := intRange(v, -1, 65535)
		if err == nil && n == 0 {
			err = errors.New("0 is not a sensor id")
		}
		c.IDSensor = n
		return err
	}, hint: "an integer 1-65535 (or -1 for unset)"},
	"sniffer": {set: boolean(func(c *Config) *bool { return &c.Sniffer }),
		hint: "yes (default) or no: no = a web front end without capture"},
	"sensor_heartbeat": {set: func(c *Config, v string) error {
		d, err := duration(v)
		if err == nil && (d < 100*time.Millisecond || d > time.Hour) {
			err = errors.New("outside 100ms-1h")
		}
		c.SensorHeartbeat = d
		return err
	}, hint: "a duration such as 10s (plain numbers are seconds)"},
	"sensor_offline_after": {set: func(c *Config, v string) error {
		d, err := duration(v)
		if err == nil && (d < time.Second || d > 24*time.Hour) {
			err = errors.New("outside 1s-24h")
		}
		c.SensorOfflineAfter = d
		return err
	}, hint: "a duration such as 35s; should exceed sensor_heartbeat by a few seconds"},
	"sensor_manager_key": {set: func(c *Config, v string) error {
		if err := sensorKey(v); err != nil {
			return err
		}
		c.SensorManagerKeys = append(c.SensorManagerKeys, v)
		return nil
	}, hint: "<id_sensor>:<base64 key>:<base64 iv>, one line per sensor", multi: true,
		reset: func(c *Config) { c.SensorManagerKeys = nil }},
	"sensor_name":        {set: str(func(c *Config) *string { return &c.SensorName }), hint: "any text"},
	"name_sensor":        {set: str(func(c *Config) *string { return &c.SensorName }), hint: "any text (VoIPmonitor's name for sensor_name)"},
	"spooldir":           {set: nonEmpty(func(c *Config) *string { return &c.SpoolDir }), hint: "a directory path"},
	"savesip":            {set: boolean(func(c *Config) *bool { return &c.SaveSIP }), hint: "yes or no"},
	"savegraph":          {set: boolean(func(c *Config) *bool { return &c.SaveGraph }), hint: "yes or no"},
	"jitterbuffer_f1":    {set: boolean(func(c *Config) *bool { return &c.JitterF1 }), hint: "yes or no"},
	"jitterbuffer_f2":    {set: boolean(func(c *Config) *bool { return &c.JitterF2 }), hint: "yes or no"},
	"mosmin_f2":          {set: boolean(func(c *Config) *bool { return &c.MOSMinF2 }), hint: "yes or no"},
	"jitterbuffer_adapt": {set: boolean(func(c *Config) *bool { return &c.JitterAdapt }), hint: "yes or no"},
	"jitterbuffer_f1_jbsize": {set: integer(1, maxFixedJitter-1, func(c *Config) *int { return &c.JitterF1Size }),
		hint: "milliseconds, 1 to 479 (default 50)"},
	"jitterbuffer_f1_resync_threshold": {set: integer(1, maxFixedJitter-1, func(c *Config) *int { return &c.JitterF1Resync }),
		hint: "milliseconds, 1 to 479 (default 100)"},
	"jitterbuffer_adapt_jbsize": {set: integer(1, 30000, func(c *Config) *int { return &c.JitterAdaptSize }),
		hint: "milliseconds, 1 to 30000 (default 500)"},
	"jitterbuffer_adapt_resync_threshold": {set: integer(1, 30000, func(c *Config) *int { return &c.JitterAdaptResync }),
		hint: "milliseconds, 1 to 30000 (default 500)"},
	"response_time_from_first_invite": {set: boolean(func(c *Config) *bool { return &c.ResponseTimeFromFirstInvite }),
		hint: "yes or no (default): cdr.response_time_100 and _xxx from the call's first INVITE instead of the quickest INVITE transaction"},
	"saveaudio_stereo": {set: boolean(func(c *Config) *bool { return &c.SaveAudioStereo }), hint: "yes or no"},
	"sip-register":     {set: boolean(func(c *Config) *bool { return &c.SIPRegister }), hint: "yes or no"},
	"sip-register-timeout": {set: seconds(func(c *Config) *time.Duration { return &c.RegisterTimeout }),
		hint: "seconds after its last message a REGISTER attempt is closed, 1-2592000 (default 5); one closed unanswered, or last answered 401/403/404, is register_failed"},
	"sip-register-max-registers": {set: integer(1, 1_000_000, func(c *Config) *int { return &c.RegisterMaxRegisters }),
		hint: "REGISTERs one attempt may send with neither a 200 nor a 401 before it is written state 4 (ManyRegMessages), 1-1000000 (default 4)"},
	"sip-register-max-messages": {set: integer(1, 1_000_000, func(c *Config) *int { return &c.RegisterMaxMessages }),
		hint: "messages one REGISTER attempt may have before it is written state 4 (ManyRegMessages), 1-1000000 (default 20)"},
	"sip-register-state-timeout": {set: func(c *Config, v string) error {
		n, err := intRange(v, 0, 30*24*3600)
		c.RegisterStateTimeout = time.Duration(n) * time.Second
		return err
	}, hint: "seconds after which a registration's unchanged state is written again, 0-2592000 (default 600; 0 = never)"},
	"sip-register-timeout-disable_save_failed": {set: boolean(func(c *Config) *bool { return &c.RegisterTimeoutNoFailed }),
		hint: "yes or no (default): yes = a REGISTER attempt closed by sip-register-timeout writes no register_failed row"},
	"nocdr": {set: boolean(func(c *Config) *bool { return &c.NoCDR }), hint: "yes or no"},
	"faxdetect": {set: boolean(func(c *Config) *bool { return &c.FaxDetect }),
		hint: "yes or no (default): look for the fax tones CNG (1100 Hz) and CED (2100 Hz) in G.711 calls and store such a call with payload 1001 (T.30 fax)"},
	"ignore_rtp_after_bye_confirmed": {set: boolean(func(c *Config) *bool { return &c.IgnoreRTPAfterByeOK }),
		hint: "yes (default) or no: RTP after the 2xx to a call's BYE does not count in its CDR (VoIPmonitor's default)"},
	"utc": {set: boolean(func(c *Config) *bool { return &c.UTC }),
		hint: "yes or no (default): yes = database times and spool directories in UTC; no = in the local zone (timezone, else the system's), as VoIPmonitor"},
	"sql_time_utc": {set: boolean(func(c *Config) *bool { return &c.UTC }), hint: "VoIPmonitor's other name for utc: yes or no"},
	"timezone": {set: func(c *Config, v string) error {
		loc, err := loadZone(v)
		c.Timezone, c.zone = v, loc
		return err
	}, hint: "a zoneinfo file such as /usr/share/zoneinfo/Europe/Prague, or a zone name such as Europe/Prague (no effect with utc = yes)"},
	"mysql_timezone": {set: func(c *Config, v string) error {
		c.MySQLTimezone = v
		return checkMySQLZone(v)
	}, hint: "the time_zone of the agent's database sessions: an offset such as +02:00 (always works), SYSTEM, " +
		"or a zone name such as Europe/Prague (the server needs its time zone tables: mysql_tzinfo_to_sql)"},
	"ipv6": {set: boolean(func(c *Config) *bool { return &c.IPv6 }),
		hint: "yes or no (default): yes = IPv6 packets are decoded and the IP columns of a new database are varbinary(16) (VoIPmonitor's ipv6 mode); no = IPv4 only, IPv6 packets are ignored"},
	"savertp": {set: func(c *Config, v string) error {
		switch strings.ToLower(v) {
		case "yes", "1", "true":
			c.SaveRTP = "yes"
		case "no", "0", "false":
			c.SaveRTP = "no"
		case "header":
			c.SaveRTP = "header"
		default:
			return errors.New("unknown mode")
		}
		return nil
	}, hint: "yes, no or header"},
	"saveaudio": {set: func(c *Config, v string) error {
		switch s := strings.ToLower(v); s {
		case "no", "0", "false", "":
			c.SaveAudio = "no"
		case "wav", "ogg", "mp3":
			c.SaveAudio = s
		case "yes", "1", "true":
			c.SaveAudio = "wav"
		default:
			return errors.New("unknown format")
		}
		return nil
	}, hint: "no, wav, ogg or mp3"},

	"pcap_dump_zip": {set: func(c *Config, v string) error {
		on, err := zipMethod(v)
		c.PcapZipSIP, c.PcapZipRTP = on, on
		return err
	}, hint: "yes (default) or no: per-call pcaps written gzip-compressed (.pcap.gz)"},
	"pcap_dump_zip_sip": {set: zipKind(func(c *Config) *bool { return &c.PcapZipSIP }), hint: zipHint},
	"pcap_dump_zip_rtp": {set: zipKind(func(c *Config) *bool { return &c.PcapZipRTP }), hint: zipHint},
	"pcap_dump_ziplevel": {set: zipLevel(func(c *Config) *int { return &c.PcapZipLevelSIP },
		func(c *Config) *int { return &c.PcapZipLevelRTP }), hint: zipLevelHint},
	"pcap_dump_ziplevel_sip": {set: zipLevel(func(c *Config) *int { return &c.PcapZipLevelSIP }), hint: zipLevelHint},
	"pcap_dump_ziplevel_rtp": {set: zipLevel(func(c *Config) *int { return &c.PcapZipLevelRTP }), hint: zipLevelHint},

	"maxpoolsize":      {set: megabytes(func(c *Config) *int { return &c.MaxPoolSizeMB }), hint: "MB of the whole spool, 0 = no limit"},
	"maxpooldays":      {set: days(func(c *Config) *int { return &c.MaxPoolDays }), hint: "days kept in the spool, 0 = no limit"},
	"maxpoolsipsize":   {set: megabytes(func(c *Config) *int { return &c.MaxPoolSIPSizeMB }), hint: "MB of SIP pcaps, 0 = no limit"},
	"maxpoolsipdays":   {set: days(func(c *Config) *int { return &c.MaxPoolSIPDays }), hint: "days of SIP pcaps kept, 0 = no limit"},
	"maxpoolrtpsize":   {set: megabytes(func(c *Config) *int { return &c.MaxPoolRTPSizeMB }), hint: "MB of RTP pcaps, 0 = no limit"},
	"maxpoolrtpdays":   {set: days(func(c *Config) *int { return &c.MaxPoolRTPDays }), hint: "days of RTP pcaps kept, 0 = no limit"},
	"maxpoolaudiosize": {set: megabytes(func(c *Config) *int { return &c.MaxPoolAudioSizeMB }), hint: "MB of WAV files, 0 = no limit"},
	"maxpoolaudiodays": {set: days(func(c *Config) *int { return &c.MaxPoolAudioDays }), hint: "days of WAV files kept, 0 = no limit"},
	"cleanspool":       {set: boolean(func(c *Config) *bool { return &c.CleanSpool }), hint: "yes (default) or no: no = the maxpool* limits are not enforced"},
	"cleanspool_interval": {set: func(c *Config, v string) error {
		d, err := duration(v)
		if err == nil && (d < 0 || (d > 0 && d < time.Second) || d > 24*time.Hour) {
			err = errors.New("outside 1s-24h")
		}
		c.CleanSpoolInterval = d
		return err
	}, hint: "seconds between cleaning passes (0 = 300), or a duration such as 5m"},

	"mysqlhost": {set: func(c *Config, v string) error {
		c.MySQLHost = v
		if v == "" {
			return nil
		}
		_, err := dbconn.Hosts(v, 3306)
		return err
	}, hint: "host[:port], or a comma list of cluster nodes tried in order; empty disables the CDR store"},
	"mysqlport":       {set: port(func(c *Config) *int { return &c.MySQLPort }), hint: "a TCP port 1-65535"},
	"mysqlsocket":     {set: str(func(c *Config) *string { return &c.MySQLSocket }), hint: "a unix socket path"},
	"mysqldb":         {set: nonEmpty(func(c *Config) *string { return &c.MySQLDB }), hint: "a database name"},
	"mysqlusername":   {set: nonEmpty(func(c *Config) *string { return &c.MySQLUsername }), hint: "a MySQL user name"},
	"mysqlpassword":   {set: str(func(c *Config) *string { return &c.MySQLPassword }), hint: ""},
	"mysqlsslkey":     {set: str(func(c *Config) *string { return &c.MySQLTLS.Key }), hint: "the client's private key, a PEM file (with mysqlsslcert)"},
	"mysqlsslcert":    {set: str(func(c *Config) *string { return &c.MySQLTLS.Cert }), hint: "the client's certificate, a PEM file (with mysqlsslkey)"},
	"mysqlsslcacert":  {set: str(func(c *Config) *string { return &c.MySQLTLS.CA }), hint: "a PEM file of the CA(s) the MySQL server's certificate must chain to; turns TLS on"},
	"mysqlsslcapath":  {set: str(func(c *Config) *string { return &c.MySQLTLS.CAPath }), hint: "a directory of CA certificates (hash-named, *.pem or *.crt); turns TLS on"},
	"mysqlsslciphers": {set: ciphers, hint: "TLS 1.2 suites in OpenSSL's spelling separated by ':', e.g. ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-AES128-GCM-SHA256; keywords such as HIGH or !aNULL are not expanded, TLS 1.3 suites cannot be chosen"},
	"mysql_connect_timeout": {set: func(c *Config, v string) error {
		n, err := intRange(v, 0, 3600)
		c.MySQLConnectTimeout = time.Duration(n) * time.Second
		return err
	}, hint: "seconds to open a MySQL connection, 0-3600 (0 = no limit of the agent's own; default 5)"},
	"cdr_partition": {set: boolean(func(c *Config) *bool { return &c.CDRPartition }), hint: "yes or no"},

	"cleandatabase":                      {set: days(func(c *Config) *int { return &c.CleanDatabase }), hint: cleanHint("cdr, register_state, register_failed, register_time_info and sip_msg")},
	"cleandatabase_cdr":                  {set: cleanDays("cdr"), hint: cleanHint("cdr and its child tables (cdr_next, cdr_rtp, …) and message")},
	"cleandatabase_cdr_rtp_energylevels": {set: cleanDays("cdr_rtp_energylevels"), hint: cleanHint("cdr_rtp_energylevels (0 = as cleandatabase_cdr)")},
	"cleandatabase_register_state":       {set: cleanDays("register_state"), hint: cleanHint("register_state")},
	"cleandatabase_register_failed":      {set: cleanDays("register_failed"), hint: cleanHint("register_failed")},
	"cleandatabase_register_time_info":   {set: cleanDays("register_time_info"), hint: cleanHint("register_time_info")},
	"cleandatabase_sip_msg":              {set: cleanDays("sip_msg"), hint: cleanHint("sip_msg")},
	"cleandatabase_rtp_stat":             {set: cleanDays("rtp_stat"), hint: cleanHint("rtp_stat (VoIPmonitor's default 2 is not applied: set it)")},
	"cleandatabase_size": {set: megabytes(func(c *Config) *int { return &c.CleanDatabaseSizeMB }),
		hint: "MB the database may hold, 0 = no limit (default); above it the oldest days of partitions are dropped (cdr_partition = yes)"},
	"partition_operations_enable_fromto": {set: func(c *Config, v string) error {
		from, to, err := hourRange(v)
		c.PartitionOpsFrom, c.PartitionOpsTo = from, to
		return err
	}, hint: "hours H-H, 0-23 (default 1-5; 22-3 wraps past midnight): when the daily cleaning runs, local time"},
	"disable_partition_operations":      {set: boolean(func(c *Config) *bool { return &c.DisablePartitionOps }), hint: "yes or no: yes = this sensor drops no partition (cleandatabase off)"},
	"disable_partition_operations_drop": {set: boolean(func(c *Config) *bool { return &c.DisablePartitionDrop }), hint: "yes or no: yes = this sensor drops no partition (cleandatabase off)"},

	"cdr_queue_dir":      {set: nonEmpty(func(c *Config) *string { return &c.CDRQueueDir }), hint: "a directory path"},
	"cdr_queue_size":     {set: integer(1, 10_000_000, func(c *Config) *int { return &c.CDRQueueSize }), hint: "an integer 1-10000000 (CDRs held in memory)"},
	"cdr_batch_size":     {set: integer(1, 10_000, func(c *Config) *int { return &c.CDRBatchSize }), hint: "an integer 1-10000 (CDRs per INSERT)"},
	"cdr_flush_interval": {set: positive(func(c *Config) *time.Duration { return &c.CDRFlushInterval }), hint: "a duration such as 500ms or 2s (plain numbers are seconds)"},
	"cdr_queue_max_mb": {set: func(c *Config, v string) error {
		n, err := intRange(v, 0, 1<<30)
		c.CDRQueueMaxBytes = int64(n) << 20
		return err
	}, hint: "megabytes, 0 = no cap"},

	"managerip": {set: func(c *Config, v string) error {
		if v != "" && net.ParseIP(v) == nil {
			return errors.New("not an IP address")
		}
		c.ManagerIP = v
		return nil
	}, hint: "an IP address such as 127.0.0.1 (0.0.0.0 = all)"},
	"managerport":   {set: portOrZero(func(c *Config) *int { return &c.ManagerPort }), hint: "a TCP port 1-65535, 0 disables the TCP listener"},
	"managersocket": {set: str(func(c *Config) *string { return &c.ManagerSocket }), hint: "a unix socket path"},
	"manager_aes_key": {set: func(c *Config, v string) error {
		if err := b64Len(v, 16); err != nil { // AES-128-CBC (spec §1.2)
			return err
		}
		c.ManagerAESKey = v
		return nil
	}, hint: "base64 of 16 bytes (AES-128); `pbx-agent gen-aes-key` prints one"},
	"manager_aes_iv": {set: func(c *Config, v string) error {
		if err := b64Len(v, 16); err != nil {
			return err
		}
		c.ManagerAESIV = v
		return nil
	}, hint: "base64 of 16 bytes; `pbx-agent gen-aes-key` prints one"},
	"cdr_ua_normalisation":         {set: boolean(func(c *Config) *bool { return &c.CDRUANormalisation }), hint: "yes (default: version numbers dropped from User-Agents, as VoIPmonitor) or no"},
	"manager_enable_unencrypted":   {set: boolean(func(c *Config) *bool { return &c.ManagerEnableUnencrypted }), hint: "yes or no"},
	"manager_max_conns_per_source": {set: integer(1, 100000, func(c *Config) *int { return &c.ManagerConnsPerSource }), hint: "connections one address (IPv6: one /64) may hold open on the manager port (default 16)"},
	"manager_first_byte_timeout":   {set: positive(func(c *Config) *time.Duration { return &c.ManagerFirstByteTimeout }), hint: "how long a manager connection may stay silent, such as 2s (default)"},
	"manager_aes_max_failures":     {set: integer(1, 1000000, func(c *Config) *int { return &c.ManagerAESMaxFailures }), hint: "failed encrypted requests from one address (IPv6: one /64) before it is blocked (default 5)"},
	"manager_aes_block":            {set: positive(func(c *Config) *time.Duration { return &c.ManagerAESBlock }), hint: "failure window and first block of an address, doubled at each new block up to 24h (default 15m)"},

	"http_bind":        {set: hostPort(func(c *Config) *string { return &c.HTTPBind }), hint: "host:port such as 127.0.0.1:8080; empty disables HTTP"},
	"http_tls_cert":    {set: str(func(c *Config) *string { return &c.HTTPTLSCert }), hint: "a PEM file path"},
	"http_tls_key":     {set: str(func(c *Config) *string { return &c.HTTPTLSKey }), hint: "a PEM file path"},
	"api_disable_auth": {set: boolean(func(c *Config) *bool { return &c.APIDisableAuth }), hint: "yes or no"},
	"users_file":       {set: str(func(c *Config) *string { return &c.UsersFile }), hint: "a file path"},
	"http_public_url": {set: func(c *Config, v string) error {
		if v != "" && !strings.HasPrefix(v, "http://") && !strings.HasPrefix(v, "https://") {
			return errors.New("not an http:// or https:// URL")
		}
		c.HTTPPublicURL = v
		return nil
	}, hint: "scheme://host[:port] put in share links, such as https://pbx.example.com"},
	"http_allowed_hosts": {set: func(c *Config, v string) error {
		for _, h := range strings.Split(v, ",") {
			if h = strings.TrimSpace(h); h != "" {
				c.HTTPAllowedHosts = append(c.HTTPAllowedHosts, h)
			}
		}
		return nil
	}, hint: "host names the web UI is reached by, comma separated (IP addresses and localhost are always accepted)", multi: true},
	"metrics_bind": {set: hostPort(func(c *Config) *string { return &c.MetricsBind }), hint: "host:port such as 127.0.0.1:9100; empty = on http_bind"},

	"asterisk_manager_conf": {set: str(func(c *Config) *string { return &c.AsteriskManagerConf }), hint: "path of Asterisk's manager.conf"},
	"ami_host":              {set: str(func(c *Config) *string { return &c.AMIHost }), hint: "a host name or IP"},
	"ami_port":              {set: port(func(c *Config) *int { return &c.AMIPort }), hint: "a TCP port 1-65535"},
	"ami_user":              {set: str(func(c *Config) *string { return &c.AMIUser }), hint: "a user from manager.conf"},
	"ami_secret":            {set: str(func(c *Config) *string { return &c.AMISecret }), hint: ""},
	"ami_auth": {set: func(c *Config, v string) error {
		switch strings.ToLower(v) {
		case "plain":
			c.AMIAuthMD5 = false
		case "md5":
			c.AMIAuthMD5 = true
		default:
			return errors.New("unknown login method")
		}
		return nil
	}, hint: "plain (Secret: sent as is, default) or md5 (Challenge/MD5 login)"},

	// HEP input (VoIPmonitor's names) and output (the agent's own).
	"hep":           {set: boolean(func(c *Config) *bool { return &c.HEP }), hint: "yes or no (default): receive HEP (Asterisk res_hep, heplify) on hep_bind_ip:hep_bind_port"},
	"hep_bind_ip":   {set: nonEmpty(func(c *Config) *string { return &c.HEPBindIP }), hint: "an IP to listen for HEP on (default 127.0.0.1)"},
	"hep_bind_port": {set: port(func(c *Config) *int { return &c.HEPBindPort }), hint: "a port 1-65535 (default 9060)"},
	"hep_bind_udp":  {set: boolean(func(c *Config) *bool { return &c.HEPBindUDP }), hint: "yes (default) or no: also listen on UDP (TCP is always on)"},
	"hep_use_system_time": {set: boolean(func(c *Config) *bool { return &c.HEPUseSystemTime }),
		hint: "yes or no (default): time HEP packets by their arrival, not by the sender's timestamp"},
	"hep_password": {set: str(func(c *Config) *string { return &c.HEPPassword }), hint: "the capture password HEP senders must use (Asterisk hep.conf capture_password); empty = any"},
	"hep_destination": {set: hostPort(func(c *Config) *string { return &c.HEPDestination }),
		hint: "host:port of a HEP collector (HOMER, heplify-server) that gets every SIP message, RTCP and stream report"},
	"hep_destination_transport": {set: func(c *Config, v string) error {
		switch s := strings.ToLower(v); s {
		case "udp", "tcp":
			c.HEPDestinationTransport = s
			return nil
		}
		return errors.New("not udp or tcp")
	}, hint: "udp (default) or tcp"},
	"hep_destination_password": {set: str(func(c *Config) *string { return &c.HEPDestinationPassword }), hint: "the collector's capture password"},
	"hep_capture_id":           {set: integer(0, 1<<31-1, func(c *Config) *int { return &c.HEPCaptureID }), hint: "the HEP capture id of this agent (default: id_sensor, else 1)"},
	"hep_node_name":            {set: str(func(c *Config) *string { return &c.HEPNodeName }), hint: "the node name sent in HEP (default: the host name)"},

	"log_format": {set: func(c *Config, v string) error {
		switch s := strings.ToLower(v); s {
		case "text", "json":
			c.LogFormat = s
			return nil
		}
		return errors.New("unknown format")
	}, hint: "text or json"},
	"log_level": {set: func(c *Config, v string) error {
		var l slog.Level
		if err := l.UnmarshalText([]byte(v)); err != nil {
			return errors.New("unknown level")
		}
		c.LogLevel = l
		return nil
	}, hint: "debug, info, warn or error"},
}

// ciphers sets mysqlsslciphers, refusing names crypto/tls cannot use.
func ciphers(c *Config, v string) error {
	if v != "" {
		if _, err := dbconn.ParseCiphers(v); err != nil {
			return err
		}
	}
	c.MySQLTLS.Ciphers = v
	return nil
}

func str(f func(*Config) *string) func(*Config, string) error {
	return func(c *Config, v string) error { *f(c) = v; return nil }
}

func nonEmpty(f func(*Config) *string) func(*Config, string) error {
	return func(c *Config, v string) error {
		if v == "" {
			return errEmpty
		}
		*f(c) = v
		return nil
	}
}

func boolean(f func(*Config) *bool) func(*Config, string) error {
	return func(c *Config, v string) error {
		switch strings.ToLower(v) {
		case "yes", "y", "1", "true", "on":
			*f(c) = true
		case "no", "n", "0", "false", "off":
			*f(c) = false
		default:
			return errors.New("not a boolean")
		}
		return nil
	}
}

// integer sets an int option from lo to hi.
func integer(lo, hi int, f func(*Config) *int) func(*Config, string) error {
	return func(c *Config, v string) error {
		n, err := intRange(v, lo, hi)
		*f(c) = n
		return err
	}
}

// natAlias parses a natalias value: two addresses separated by blanks, '='
// or (IPv4) ':', as VoIPmonitor reads it.
func natAlias(v string) (from, to netip.Addr, err error) {
	f := strings.FieldsFunc(v, func(r rune) bool { return r == ' ' || r == '\t' || r == '=' })
	if len(f) == 1 && strings.Count(f[0], ":") == 1 {
		f = strings.Split(f[0], ":")
	}
	if len(f) != 2 {
		return from, to, errors.New("want two addresses")
	}
	if from, err = netip.ParseAddr(f[0]); err == nil {
		to, err = netip.ParseAddr(f[1])
	}
	if err == nil && from.Is4() != to.Is4() {
		err = errors.New("an IPv4 and an IPv6 address")
	}
	return from.Unmap(), to.Unmap(), err
}

// seconds sets a duration option given as whole seconds, as VoIPmonitor's
// timeouts (1 s to 30 days).
func seconds(f func(*Config) *time.Duration) func(*Config, string) error {
	return func(c *Config, v string) error {
		n, err := intRange(v, 1, 30*24*3600)
		*f(c) = time.Duration(n) * time.Second
		return err
	}
}

func megabytes(f func(*Config) *int) func(*Config, string) error {
	return integer(0, 1<<30, f) // up to 1 EB
}

func days(f func(*Config) *int) func(*Config, string) error { return integer(0, 100*366, f) }

// cleanDays sets cleandatabase_<table>.
func cleanDays(table string) func(*Config, string) error {
	return func(c *Config, v string) error {
		var n int
		err := days(func(*Config) *int { return &n })(c, v)
		if c.CleanDatabaseTable == nil {
			c.CleanDatabaseTable = map[string]int{}
		}
		c.CleanDatabaseTable[table] = n
		return err
	}
}

func cleanHint(tables string) string {
	return "days kept in " + tables + ", 0 = keep everything (default); older daily partitions are dropped, rows of tables without partitions deleted"
}

// hourRange parses VoIPmonitor's hour interval: "H-H" or one hour "H", 0-23.
func hourRange(v string) (from, to int, err error) {
	a, b, ok := strings.Cut(v, "-")
	if !ok {
		b = a
	}
	if from, err = intRange(strings.TrimSpace(a), 0, 23); err != nil {
		return 0, 0, err
	}
	to, err = intRange(strings.TrimSpace(b), 0, 23)
	return from, to, err
}

func port(f func(*Config) *int) func(*Config, string) error { return integer(1, 65535, f) }

func portOrZero(f func(*Config) *int) func(*Config, string) error { return integer(0, 65535, f) }

// positive sets a duration option that must be above zero.
func positive(f func(*Config) *time.Duration) func(*Config, string) error {
	return func(c *Config, v string) error {
		d, err := duration(v)
		if err == nil && d <= 0 {
			err = errors.New("must be positive")
		}
		*f(c) = d
		return err
	}
}

func hostPort(f func(*Config) *string) func(*Config, string) error {
	return func(c *Config, v string) error {
		if v != "" {
			_, p, err := net.SplitHostPort(v)
			if err != nil {
				return errors.New("not host:port")
			}
			if _, err := intRange(p, 0, 65535); err != nil {
				return err
			}
		}
		*f(c) = v
		return nil
	}
}

func intRange(v string, lo, hi int) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, errors.New("not an integer")
	}
	if n < lo || n > hi {
		return 0, fmt.Errorf("%d outside %d-%d", n, lo, hi)
	}
	return n, nil
}

func duration(v string) (time.Duration, error) {
	if f, err := strconv.ParseFloat(v, 64); err == nil {
		return time.Duration(f * float64(time.Second)), nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, errors.New("not a duration")
	}
	return d, nil
}

func b64Len(v string, n int) error {
	b, err := base64.StdEncoding.DecodeString(v)
	if err != nil {
		return errors.New("not base64")
	}
	if len(b) != n {
		return fmt.Errorf("decodes to %d bytes, want %d", len(b), n)
	}
	return nil
}

// sensorKey checks a sensor_manager_key value: "<id>:<base64 16 bytes>:<base64 16 bytes>".
func sensorKey(v string) error {
	parts := strings.Split(v, ":")
	if len(parts) != 3 {
		return errors.New("want <id_sensor>:<base64 key>:<base64 iv>")
	}
	if _, err := intRange(strings.TrimSpace(parts[0]), 0, 65535); err != nil {
		return fmt.Errorf("id_sensor: %w", err)
	}
	if err := b64Len(strings.TrimSpace(parts[1]), 16); err != nil {
		return fmt.Errorf("key: %w", err)
	}
	if err := b64Len(strings.TrimSpace(parts[2]), 16); err != nil {
		return fmt.Errorf("iv: %w", err)
	}
	return nil
}

// parsePorts parses "5060,5070-5080".
func parsePorts(v string) ([]PortRange, error) {
	var out []PortRange
	for _, part := range strings.Split(v, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := intRange(strings.TrimSpace(lo), 1, 65535)
		if err != nil {
			return nil, err
		}
		b := a
		if isRange {
			if b, err = intRange(strings.TrimSpace(hi), 1, 65535); err != nil {
				return nil, err
			}
			if b < a {
				return nil, fmt.Errorf("range %d-%d is reversed", a, b)
			}
		}
		out = append(out, PortRange{uint16(a), uint16(b)})
	}
	if len(out) == 0 {
		return nil, errEmpty
	}
	return out, nil
}

// suggest returns the known key closest to key (edit distance ≤ 3), or "".
func suggest(key string) string {
	best, bestD := "", 4
	try := func(k string) {
		if d := editDistance(key, k); d < bestD || (d == bestD && k < best) {
			best, bestD = k, d
		}
	}
	for k := range options {
		try(k)
	}
	for _, k := range noEffectKeys {
		try(k)
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

const (
	zipHint      = "gzip, yes or no (lzo and zstd are written as gzip, which tshark and Wireshark open)"
	zipLevelHint = "gzip level 1-9 (-1 = 6)"
)

// zipMethod parses a pcap_dump_zip* value: whether pcaps are compressed.
// VoIPmonitor's lzo and zstd are accepted and written as gzip.
func zipMethod(v string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "yes", "y", "1", "true", "on", "gzip", "lzo", "zstd":
		return true, nil
	case "no", "n", "0", "false", "off", "":
		return false, nil
	}
	return false, errors.New("unknown compression")
}

// zipKind sets whether one kind of pcap is compressed.
func zipKind(f func(*Config) *bool) func(*Config, string) error {
	return func(c *Config, v string) error {
		on, err := zipMethod(v)
		*f(c) = on
		return err
	}
}

// zipLevel sets the gzip level of the kinds given (-1 is zlib's default, 6).
func zipLevel(fs ...func(*Config) *int) func(*Config, string) error {
	return func(c *Config, v string) error {
		n, err := intRange(v, -1, 9)
		if err == nil && n == 0 {
			err = errors.New("0 stores without compressing: say pcap_dump_zip = no")
		}
		if n == -1 {
			n = 6
		}
		for _, f := range fs {
			*f(c) = n
		}
		return err
	}
}

// loadZone reads timezone's value as VoIPmonitor's TZ would be read: a path
// to a zoneinfo file, or a zone name looked up in the system's zoneinfo; a
// leading ':' (POSIX TZ) is dropped. "" is no zone (nil).
func loadZone(v string) (*time.Location, error) {
	v = strings.TrimPrefix(v, ":")
	if v == "" {
		return nil, nil
	}
	if !filepath.IsAbs(v) {
		loc, err := time.LoadLocation(v)
		if err != nil {
			return nil, fmt.Errorf("%w: unknown zone", ErrZone)
		}
		return loc, nil
	}
	b, err := os.ReadFile(v)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrZone, err)
	}
	loc, err := time.LoadLocationFromTZData(zoneinfoName(v), b)
	if err != nil {
		return nil, fmt.Errorf("%w: not a zoneinfo file (%w)", ErrZone, err)
	}
	return loc, nil
}

// zoneinfoName is a zoneinfo path's part below zoneinfo/ ("Europe/Prague"),
// as VoIPmonitor names the system zone (tools.cpp:8930-8945), or the path.
func zoneinfoName(path string) string {
	if i := strings.LastIndex(path, "zoneinfo/"); i >= 0 {
		return path[i+len("zoneinfo/"):]
	}
	return path
}
