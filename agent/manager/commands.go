package manager

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"pbx-agent/agent/manager/wire"
	"pbx-agent/sniffer/call"
)

// Calls is what the manager needs from the call table.
type Calls interface {
	// Active returns a snapshot of the calls in memory.
	Active() []call.CDR
	// Lookup returns one active call by its call reference.
	Lookup(ref uint64) (call.CDR, bool)
	// Registers returns the current REGISTER states.
	Registers() []call.Register
	// Pause pauses (on) or resumes recording of a call (spec §6); an
	// error wrapping call.ErrNoCall for an unknown reference.
	// ctx carries who asked (call.RequesterFrom: the client's address and
	// the interface).
	Pause(ctx context.Context, ref uint64, on bool) error
}

// Request is one parsed command as a handler sees it.
type Request struct {
	Name      string // the command that matched
	Line      string // the whole command line
	Args      string // text after the first token, leading blanks removed
	Unix      bool   // arrived on a unix socket
	Encrypted bool   // arrived AES-encrypted
}

// Command is one manager command. Run writes the reply to w; the reply ends
// when Run returns (the connection is then closed). Replies carry no forced
// trailing newline.
type Command struct {
	Run   func(ctx context.Context, w io.Writer, req *Request) error
	Help  string // one line for `help`; "" hides the command there
	NoAES bool   // allowed in plaintext on TCP even when an AES key exists
}

// Fixed reply texts (VoIPmonitor's, byte for byte).
const (
	replyNotFound     = wire.ReplyUnknownCommand
	replyNeedAES      = "need aes!\n"
	replyFailedAES    = "failed aes decrypt!\n"
	replyBadCallID    = "Bad/missing Call id\n"
	replyCallNotFound = "Call id not found\n"
	replyAccessDenied = "access denied"
)

func (s *Server) builtinCommands(extra map[string]Command) (map[string]Command, []string) {
	ct := newCallTable()
	m := map[string]Command{
		"listcalls":              {Run: s.limited(s.listCalls(ct)), Help: "lists active calls"},
		"totalcalls":             {Run: s.limited(s.totalCalls), Help: "return the number of total calls", NoAES: true},
		"active_call_info":       {Run: s.limited(s.activeCallInfo(ct)), Help: "get active call info"},
		"pausecall":              {Run: s.pauseCall(true), Help: "pause call's processing"},
		"unpausecall":            {Run: s.pauseCall(false), Help: "unpause call's processing"},
		"listen":                 {Run: s.listenStart, Help: "start listen"},
		"readaudio":              {Run: s.readAudio, Help: "start read audio"},
		"listen_stop":            {Run: s.listenStop, Help: "stop listen"},
		"listregisters":          {Run: s.limited(s.listRegisters), Help: "return the list of registers. Possible params:"},
		"totalregisters":         {Run: s.totalRegisters, Help: "return the number of total registers"},
		"getfile":                {Run: s.getFile(false), Help: "get file"},
		"getfile_zip":            {Run: s.getFile(true), Help: "get zipped file"},
		"getfile_is_zip_support": {Run: text("OK"), Help: "return OK if zip is supported"},
		"sql_time_information":   {Run: s.sqlTimeInformation, Help: "sql_time_information"},
		"file_exists":            {Run: s.fileExists, Help: "file exists"},
		"getversion":             {Run: s.getVersion, Help: "return the version of the sniffer", NoAES: true},
		"getbuild":               {Run: s.getBuild, Help: "return the build number of the sniffer", NoAES: true},
		"sniffer_stat":           {Run: s.snifferStat, Help: "return sniffer's statistics (use 'plain' for key=value format)", NoAES: true},
		"reload":                 {Run: s.reload, Help: "voipmonitor's reload: re-reads what SIGHUP re-reads (the web API users)"},
		"help":                   {Run: s.help, Help: "print command's help"},
		"manager_file":           {Run: s.managerFile, Help: "start/stop the manager's unix socket file (manager_file start [path in the temp directory] | stop)"},
		"support_aes":            {Run: text("yes"), NoAES: true},
		"exists_aes_key":         {Run: s.existsAESKey, NoAES: true},
		"need_aes":               {Run: text(replyNeedAES), NoAES: true},
		"failed_aes_decrypt":     {Run: text(replyFailedAES), NoAES: true},
	}
	for name, c := range extra {
		if c.Run != nil && name != "" && !strings.ContainsAny(name, " \t\r\n") {
			m[name] = c
		}
	}
	names := make([]string, 0, len(m))
	for name := range m {
		names = append(names, name)
	}
	slices.Sort(names)
	return m, names
}

// limited runs f holding one of Config.MaxSnapshots slots.
func (s *Server) limited(f func(context.Context, io.Writer, *Request) error) func(context.Context, io.Writer, *Request) error {
	return func(ctx context.Context, w io.Writer, req *Request) error {
		select {
		case s.snapshot <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		}
		defer func() { <-s.snapshot }()
		return f(ctx, w, req)
	}
}

func text(s string) func(context.Context, io.Writer, *Request) error {
	return func(_ context.Context, w io.Writer, _ *Request) error {
		_, err := io.WriteString(w, s)
		return err
	}
}

// splitCommand cuts the first token (up to space or tab) from line.
func splitCommand(line string) (name, args string) {
	i := strings.IndexAny(line, " \t")
	if i < 0 {
		return line, ""
	}
	return line[:i], strings.TrimLeft(line[i:], " \t")
}

// lookup finds the command for line: exact first token, else (VoIPmonitor's
// legacy rule) the alphabetically first command name occurring anywhere in the line.
func (s *Server) lookup(line string) (string, Command, string, bool) {
	name, args := splitCommand(line)
	if c, ok := s.commands[name]; ok {
		return name, c, args, true
	}
	if name == "" {
		return "", Command{}, "", false
	}
	for _, n := range s.names {
		if i := strings.Index(line, n); i >= 0 {
			return n, s.commands[n], strings.TrimLeft(line[i+len(n):], " \t"), true
		}
	}
	return "", Command{}, "", false
}

// key asks the key source; no source means no key.
func (s *Server) key(ctx context.Context, reload bool) (wire.AESKey, bool, error) {
	if s.cfg.Keys == nil {
		return wire.AESKey{}, false, nil
	}
	return s.cfg.Keys.ManagerKey(ctx, reload)
}

// handle runs one request and writes its reply (encrypted when the request
// was). An encrypted request runs only when it decrypts (sealed: also
// authenticates, is fresh and not replayed) and its text starts with a
// known command; every other outcome gets one and the same reply, so the
// reply tells an attacker nothing about the padding or the text (no
// padding oracle), and counts against its source (aesFailed).
func (s *Server) handle(ctx context.Context, w io.Writer, r rawRequest, unix bool, src netip.Addr) error {
	if !r.encrypted {
		return s.dispatch(ctx, w, string(r.line), false, unix)
	}
	key, ok, err := s.key(ctx, false)
	if err != nil || !ok {
		s.aesFailed(src, "no key")
		_, werr := io.WriteString(w, replyFailedAES)
		return werr
	}
	if r.sealed {
		return s.handleSealed(ctx, w, r, key, unix, src)
	}
	pt, derr := key.Decrypt(r.ciphertext)
	if derr != nil {
		if k2, ok2, err2 := s.key(ctx, true); err2 == nil && ok2 {
			key = k2
			pt, derr = key.Decrypt(r.ciphertext)
		}
	}
	line := string(commandLine(pt))
	if derr != nil || !s.knownCommand(line) {
		return s.refuseAES(w, key, src)
	}
	aw := wire.NewReplyWriter(w, key)
	if err := s.dispatch(ctx, aw, line, true, unix); err != nil {
		return err
	}
	return aw.Close()
}

// handleSealed runs a request of pbx-agent's authenticated scheme.
func (s *Server) handleSealed(ctx context.Context, w io.Writer, r rawRequest, key wire.AESKey, unix bool, src netip.Addr) error {
	pt, nonce, sent, err := key.OpenRequest(r.ciphertext)
	if err != nil {
		if k2, ok2, err2 := s.key(ctx, true); err2 == nil && ok2 && k2 != key {
			key = k2
			pt, nonce, sent, err = key.OpenRequest(r.ciphertext)
		}
	}
	line := string(commandLine(pt))
	if err != nil || !s.knownCommand(line) || !s.replays.fresh(nonce, sent, time.Now()) {
		return s.refuseAES(w, key, src)
	}
	sw := wire.NewSealedWriter(w, key, nonce)
	if err := s.dispatch(ctx, sw, line, true, unix); err != nil {
		return err
	}
	return sw.Close()
}

// knownCommand reports whether an encrypted request's text starts with a
// command name (exactly its first token: no search inside the text).
func (s *Server) knownCommand(line string) bool {
	name, _ := splitCommand(line)
	_, ok := s.commands[name]
	return ok
}

// refuseAES answers a failed encrypted request: always VoIPmonitor's
// encrypted "failed aes decrypt!" (the same bytes whatever failed).
func (s *Server) refuseAES(w io.Writer, key wire.AESKey, src netip.Addr) error {
	s.aesFailed(src, "refused")
	aw := wire.NewReplyWriter(w, key)
	if _, err := io.WriteString(aw, replyFailedAES); err != nil {
		return err
	}
	return aw.Close()
}

// aesFailed counts a failed encrypted request, logs it with its source and
// blocks the source once it failed Config.AESMaxFailures times.
func (s *Server) aesFailed(src netip.Addr, why string) {
	s.decryptFailed.Add(1)
	total, blocked := s.guard.fail(src)
	if blocked > 0 {
		s.sourcesBlocked.Add(1)
		s.log.Warn("manager source blocked after failed AES requests", "remote", src, "failures", total, "for", blocked)
		return
	}
	s.log.Warn("manager AES request refused", "remote", src, "reason", why, "failures", total)
}

func (s *Server) dispatch(ctx context.Context, w io.Writer, line string, encrypted, unix bool) error {
	name, cmd, args, ok := s.lookup(line)
	if !ok {
		s.notFound.Add(1)
		_, err := io.WriteString(w, replyNotFound)
		return err
	}
	if !encrypted && !unix && !cmd.NoAES && !s.cfg.EnableUnencrypted {
		if _, has, err := s.key(ctx, false); has || err != nil {
			s.needAES.Add(1)
			_, err := io.WriteString(w, replyNeedAES)
			return err
		}
	}
	req := &Request{Name: name, Line: line, Args: args, Unix: unix, Encrypted: encrypted}
	if err := cmd.Run(ctx, w, req); err != nil {
		return fmt.Errorf("manager: %s: %w", name, err)
	}
	return nil
}

// Run executes one command line as if it had arrived in plaintext on the
// unix socket (no AES check) and writes the reply to w. For tests and for
// in-process callers such as the web UI.
func (s *Server) Run(ctx context.Context, w io.Writer, line string) error {
	return s.dispatch(ctx, w, line, false, true)
}

// gzipWriter compresses a reply unless it already starts with the gzip magic
// (VoIPmonitor's zip flag).
type gzipWriter struct {
	w       io.Writer
	zw      *gzip.Writer
	decided bool
	head    []byte
}

func newGzipWriter(w io.Writer) *gzipWriter { return &gzipWriter{w: w} }

// writeRows finishes a JSON array reply whose start is in b: it appends n
// rows (each after a comma) with row, writes to w (through a gzipWriter when
// zip is set) whenever b passes 48 KiB, then closes the array.
func writeRows(w io.Writer, zip bool, b []byte, n int, row func(b []byte, i int) []byte) error {
	out := w
	var zw *gzipWriter
	if zip {
		zw = newGzipWriter(w)
		out = zw
	}
	for i := 0; i < n; i++ {
		b = append(b, ',')
		b = row(b, i)
		if len(b) >= 48<<10 {
			if _, err := out.Write(b); err != nil {
				return err
			}
			b = b[:0]
		}
	}
	b = append(b, ']')
	if _, err := out.Write(b); err != nil {
		return err
	}
	if zw != nil {
		return zw.Close()
	}
	return nil
}

func (g *gzipWriter) Write(p []byte) (int, error) {
	if g.decided {
		if g.zw != nil {
			return g.zw.Write(p)
		}
		return g.w.Write(p)
	}
	n := len(p)
	g.head = append(g.head, p...)
	if len(g.head) < 2 {
		return n, nil
	}
	if err := g.decide(); err != nil {
		return 0, err
	}
	return n, nil
}

func (g *gzipWriter) decide() error {
	g.decided = true
	head := g.head
	g.head = nil
	if len(head) == 0 {
		return nil
	}
	if len(head) >= 2 && head[0] == 0x1f && head[1] == 0x8b {
		_, err := g.w.Write(head)
		return err
	}
	g.zw = gzip.NewWriter(g.w)
	_, err := g.zw.Write(head)
	return err
}

func (g *gzipWriter) Close() error {
	if !g.decided {
		if err := g.decide(); err != nil {
			return err
		}
	}
	if g.zw != nil {
		return g.zw.Close()
	}
	return nil
}

// parseRef reads a call reference: decimal, else hexadecimal with or
// without 0x (listen, readaudio, active_call_info).
func parseRef(s string) (uint64, bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, false
	}
	if h, ok := strings.CutPrefix(strings.ToLower(s), "0x"); ok {
		v, err := strconv.ParseUint(h, 16, 64)
		return v, err == nil && v != 0
	}
	if v, err := strconv.ParseUint(s, 10, 64); err == nil {
		return v, v != 0
	}
	v, err := strconv.ParseUint(s, 16, 64)
	return v, err == nil && v != 0
}

// parseHexRef is pausecall's sscanf("0x%llx"): 0x then hex digits (stops at the first non-hex).
func parseHexRef(s string) (uint64, bool) {
	s = strings.TrimSpace(s)
	h, ok := strings.CutPrefix(s, "0x")
	if !ok {
		return 0, false
	}
	end := 0
	for end < len(h) && end < 16 && isHex(h[end]) {
		end++
	}
	if end == 0 {
		return 0, false
	}
	v, err := strconv.ParseUint(h[:end], 16, 64)
	return v, err == nil
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func (s *Server) activeCalls() []call.CDR {
	if s.cfg.Calls == nil {
		return nil
	}
	return s.cfg.Calls.Active()
}

func (s *Server) listCalls(ct *callTable) func(context.Context, io.Writer, *Request) error {
	return func(_ context.Context, w io.Writer, req *Request) error {
		p, err := parseListParams(req.Args)
		if err != nil {
			_, err = fmt.Fprintf(w, "error: %v\n", err)
			return err
		}
		calls := s.activeCalls()
		rows := make([]callRow, 0, len(calls))
		now := time.Now()
		for i := range calls {
			if calls[i].Bye == call.ByeOK {
				continue
			}
			r := newCallRow(&calls[i], s.cfg.Location, s.cfg.SensorID, now)
			if matchCall(&r.s, p.filters) {
				rows = append(rows, r)
			}
		}
		ct.sortRows(rows, p.sortField, p.sortAsc)
		b := make([]byte, 0, 64<<10)
		b = append(b, '[')
		b = append(b, ct.header...)
		if p.present {
			b = append(b, `,[{"total":`...)
			b = strconv.AppendInt(b, int64(len(rows)), 10)
			b = append(b, `,"is_receiver":0,"is_server":0,"id_sensor":`...)
			b = strconv.AppendInt(b, int64(s.cfg.SensorID), 10)
			b = append(b, "}]"...)
		}
		if p.limit >= 0 && p.limit < len(rows) {
			rows = rows[:p.limit]
		}
		return writeRows(w, p.zip, b, len(rows), func(b []byte, i int) []byte { return ct.appendRow(b, &rows[i]) })
	}
}

// CallCounter may be implemented by a Calls to answer totalcalls without a snapshot.
type CallCounter interface {
	Count() int
}

func (s *Server) totalCalls(_ context.Context, w io.Writer, _ *Request) error {
	var n int
	if cc, ok := s.cfg.Calls.(CallCounter); ok {
		n = cc.Count()
	} else {
		n = len(s.activeCalls())
	}
	_, err := io.WriteString(w, strconv.Itoa(n))
	return err
}

// activeCallInfo: {"call":{…},"sip_packets":…,"rtp_streams":[…]}.
func (s *Server) activeCallInfo(ct *callTable) func(context.Context, io.Writer, *Request) error {
	return func(_ context.Context, w io.Writer, req *Request) error {
		arg := strings.TrimSpace(req.Args)
		zip := false
		if strings.HasPrefix(arg, "{") {
			var v struct {
				Ref json.RawMessage `json:"callreference"`
				Zip string          `json:"zip"`
			}
			if err := json.Unmarshal([]byte(arg), &v); err != nil {
				_, err := io.WriteString(w, "call not found")
				return err
			}
			var sv string
			if json.Unmarshal(v.Ref, &sv) != nil {
				sv = string(v.Ref)
			}
			arg, zip = sv, strings.EqualFold(v.Zip, "yes")
		}
		ref, ok := parseRef(arg)
		var c call.CDR
		if ok && s.cfg.Calls != nil {
			c, ok = s.cfg.Calls.Lookup(ref)
		} else {
			ok = false
		}
		if !ok {
			_, err := io.WriteString(w, "call not found")
			return err
		}
		r := newCallRow(&c, s.cfg.Location, s.cfg.SensorID, time.Now())
		b := append([]byte(nil), `{"call":`...)
		b = ct.appendObject(b, &r)
		b = append(b, `,"sip_packets":"active call info is disabled (option active_call_info)","rtp_streams":[`...)
		for i := range c.Streams {
			st := &c.Streams[i]
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"src_ip":`...)
			b = appendJSONString(b, ipText(st.Src.Addr()))
			b = append(b, `,"src_port":"`...)
			b = strconv.AppendUint(b, uint64(st.Src.Port()), 10)
			b = append(b, `","dst_ip":`...)
			b = appendJSONString(b, ipText(st.Dst.Addr()))
			b = append(b, `,"dst_port":"`...)
			b = strconv.AppendUint(b, uint64(st.Dst.Port()), 10)
			b = append(b, `","time":`...)
			b = strconv.AppendInt(b, st.FirstTime.UnixMicro(), 10)
			b = append(b, `,"time_last":`...)
			b = strconv.AppendInt(b, st.LastTime.UnixMicro(), 10)
			b = append(b, `,"ssrc":`...)
			b = strconv.AppendUint(b, uint64(st.SSRC), 10)
			b = append(b, `,"codec":`...)
			b = strconv.AppendInt(b, int64(st.CodecID()), 10)
			b = append(b, `,"received":`...)
			b = strconv.AppendInt(b, int64(st.Received), 10)
			b = append(b, `,"lost":`...)
			b = strconv.AppendInt(b, int64(st.Lost), 10)
			b = append(b, `,"jitter_avg":`...)
			b = appendFloatG(b, st.AvgJitter)
			b = append(b, `,"jitter_max":`...)
			b = appendFloatG(b, st.MaxJitter)
			b = append(b, '}')
		}
		b = append(b, "]}"...)
		if zip {
			zw := newGzipWriter(w)
			if _, err := zw.Write(b); err != nil {
				return err
			}
			return zw.Close()
		}
		_, err := w.Write(b)
		return err
	}
}

// pauseCall: `pausecall 0x<ref>`; success writes nothing (spec §6).
func (s *Server) pauseCall(on bool) func(context.Context, io.Writer, *Request) error {
	return func(ctx context.Context, w io.Writer, req *Request) error {
		ref, ok := parseHexRef(req.Args)
		if !ok {
			_, err := io.WriteString(w, replyBadCallID)
			return err
		}
		if s.cfg.Calls == nil {
			_, err := io.WriteString(w, replyCallNotFound)
			return err
		}
		if err := s.cfg.Calls.Pause(ctx, ref, on); err != nil {
			if errors.Is(err, call.ErrNoCall) {
				_, err := io.WriteString(w, replyCallNotFound)
				return err
			}
			_, err := fmt.Fprintf(w, "error: %v\n", err)
			return err
		}
		return nil
	}
}

// listenArgs parses `<ref> <listen_id>`.
func listenArgs(args string) (uint64, string, bool) {
	f := strings.Fields(args)
	if len(f) < 2 || len(f[1]) > listenMaxIDLen {
		return 0, "", false
	}
	ref, ok := parseRef(f[0])
	return ref, f[1], ok
}

func (s *Server) callExists(ref uint64) bool {
	if s.cfg.Calls == nil {
		return false
	}
	_, ok := s.cfg.Calls.Lookup(ref)
	return ok
}

func (s *Server) listenStart(ctx context.Context, w io.Writer, req *Request) error {
	if s.cfg.Audio == nil {
		_, err := io.WriteString(w, listenDisabled)
		return err
	}
	ref, id, ok := listenArgs(req.Args)
	if !ok || !s.callExists(ref) {
		_, err := io.WriteString(w, listenNoCall)
		return err
	}
	_, err := io.WriteString(w, s.listen.start(ctx, ref, id))
	return err
}

func (s *Server) readAudio(_ context.Context, w io.Writer, req *Request) error {
	ref, id, ok := listenArgs(req.Args)
	if !ok || !s.callExists(ref) {
		_, err := io.WriteString(w, "error: call not found")
		return err
	}
	pcm, msg := s.listen.read(ref, id, nil)
	if msg != "" {
		_, err := io.WriteString(w, msg)
		return err
	}
	_, err := w.Write(pcm)
	return err
}

func (s *Server) listenStop(_ context.Context, _ io.Writer, req *Request) error {
	if ref, id, ok := listenArgs(req.Args); ok {
		s.listen.stop(ref, id)
	}
	return nil
}

func (s *Server) getVersion(_ context.Context, w io.Writer, _ *Request) error {
	_, err := io.WriteString(w, s.cfg.Version)
	return err
}

// sqlTimeInformation is VoIPmonitor's sql_time_information
// (manager.cpp:5018-5036): "name,offset,now" for the zone stored times are
// in — "UTC,0,…" with utc = yes — now as a database datetime in it.
func (s *Server) sqlTimeInformation(_ context.Context, w io.Writer, _ *Request) error {
	now := time.Now().In(s.cfg.Location)
	abbr, off := now.Zone()
	name := s.cfg.ZoneName
	switch {
	case s.cfg.Location == time.UTC:
		name = "UTC"
	case name == "" && s.cfg.Location != time.Local:
		name = s.cfg.Location.String()
	case name == "":
		name = abbr // VoIPmonitor's tm_zone when the system zone has no name
	}
	_, err := fmt.Fprintf(w, "%s,%d,%s", name, off, now.Format(time.DateTime))
	return err
}

func (s *Server) getBuild(_ context.Context, w io.Writer, _ *Request) error {
	_, err := io.WriteString(w, s.cfg.Build)
	return err
}

func (s *Server) reload(ctx context.Context, w io.Writer, _ *Request) error {
	if s.cfg.Reload != nil {
		if err := s.cfg.Reload(ctx); err != nil {
			_, err := fmt.Fprintf(w, "reload failed: %v", err)
			return err
		}
	}
	_, err := io.WriteString(w, "reload ok")
	return err
}

// help: "List of commands:\n\n<cmd> ... <text>.\n\n" per command, as VoIPmonitor's.
func (s *Server) help(_ context.Context, w io.Writer, req *Request) error {
	var b bytes.Buffer
	entry := func(name string) {
		b.WriteString(name)
		b.WriteString(" ... ")
		b.WriteString(s.commands[name].Help)
		b.WriteString(".\n\n")
	}
	if name := strings.TrimSpace(req.Args); name != "" {
		if c, ok := s.commands[name]; !ok || c.Help == "" {
			b.WriteString(replyNotFound)
		} else {
			entry(name)
		}
	} else {
		b.WriteString("List of commands:\n\n")
		for _, name := range s.names {
			if s.commands[name].Help != "" {
				entry(name)
			}
		}
	}
	_, err := w.Write(b.Bytes())
	return err
}

func (s *Server) existsAESKey(ctx context.Context, w io.Writer, _ *Request) error {
	_, ok, err := s.key(ctx, true)
	ans := "no"
	if ok && err == nil {
		ans = "yes"
	}
	_, werr := io.WriteString(w, ans)
	return werr
}

// managerFile: `manager_file start [path]` → "OK (<path>)\n"; `manager_file stop` → "OK\n".
func (s *Server) managerFile(_ context.Context, w io.Writer, req *Request) error {
	f := strings.Fields(req.Args)
	var reply string
	switch {
	case len(f) >= 1 && f[0] == "start":
		path := ""
		if len(f) >= 2 {
			path = f[1]
		}
		p, err := s.StartSocket(path)
		switch {
		case errors.Is(err, ErrSocketRunning):
			reply = "already running (" + p + ")\n"
		case err != nil:
			reply = "error: " + err.Error() + "\n"
		default:
			s.log.Info("manager socket file started", "path", p)
			reply = "OK (" + p + ")\n"
		}
	case len(f) >= 1 && f[0] == "stop":
		switch err := s.StopSocket(); {
		case errors.Is(err, ErrSocketNotRunning):
			reply = "not running"
		case errors.Is(err, ErrSocketConfigured):
			reply = "the socket file was set by the managersocket option and cannot be stopped\n"
		case err != nil:
			reply = "error: " + err.Error() + "\n"
		default:
			reply = "OK\n"
		}
	default:
		reply = "usage: manager_file start [path] | stop\n"
	}
	_, err := io.WriteString(w, reply)
	return err
}
