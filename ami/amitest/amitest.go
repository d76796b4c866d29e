// Package amitest is a fake Asterisk manager for tests: it replays the bytes
// of recorded AMI sessions (see shared/fixtures/asterisk) over loopback or
// net.Pipe, answers actions with recorded answers (only the ActionID line is
// rewritten to the client's), and can drop the connection mid-stream. Test
// code only.
package amitest

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"pbx-agent/ami"
)

// Packet is one recorded server packet: its exact bytes and its parse.
type Packet struct {
	Raw []byte
	Msg ami.Message
}

// Recording is one recorded connection: what the server sent, split into the
// banner and packets, and what the client sent.
type Recording struct {
	Banner  []byte
	Packets []Packet
	Sent    []ami.Message
}

// Split cuts a server byte stream into banner (if any) and packets, keeping
// each packet's bytes exactly (including its closing blank line).
func Split(recv []byte) (banner []byte, pkts []Packet, err error) {
	if bytes.HasPrefix(recv, []byte("Asterisk Call Manager/")) {
		nl := bytes.IndexByte(recv, '\n')
		if nl < 0 {
			return nil, nil, errors.New("amitest: banner without line end")
		}
		banner, recv = recv[:nl+1], recv[nl+1:]
	}
	for len(recv) > 0 {
		end := bytes.Index(recv, []byte("\r\n\r\n"))
		if end < 0 {
			return nil, nil, fmt.Errorf("amitest: unterminated packet %q", recv[:min(len(recv), 40)])
		}
		raw := recv[:end+4]
		recv = recv[end+4:]
		p := ami.NewParser(ami.Limits{})
		p.Write(raw)
		m, err := p.Next()
		if err != nil {
			return nil, nil, fmt.Errorf("amitest: packet %q: %w", raw[:min(len(raw), 40)], err)
		}
		pkts = append(pkts, Packet{Raw: raw, Msg: m})
	}
	return banner, pkts, nil
}

// Load builds a Recording from server bytes and (optionally) client bytes.
func Load(recv, sent []byte) (*Recording, error) {
	r := &Recording{}
	var err error
	if r.Banner, r.Packets, err = Split(recv); err != nil {
		return nil, err
	}
	if len(sent) > 0 {
		rd := ami.NewReader(bytes.NewReader(sent), ami.Limits{})
		for {
			m, err := rd.ReadMessage()
			if err == io.EOF {
				break
			}
			if err != nil {
				return nil, fmt.Errorf("amitest: sent stream: %w", err)
			}
			r.Sent = append(r.Sent, m)
		}
	}
	return r, nil
}

// LoadFiles reads recv and, when sentPath is not empty, the client's bytes.
func LoadFiles(tb testing.TB, recvPath, sentPath string) *Recording {
	tb.Helper()
	recv, err := os.ReadFile(recvPath)
	if err != nil {
		tb.Fatal(err)
	}
	var sent []byte
	if sentPath != "" {
		if sent, err = os.ReadFile(sentPath); err != nil {
			tb.Fatal(err)
		}
	}
	r, err := Load(recv, sent)
	if err != nil {
		tb.Fatal(err)
	}
	return r
}

// ids returns the ActionIDs the recorded client sent.
func (r *Recording) ids() map[string]ami.Message {
	out := map[string]ami.Message{}
	for _, m := range r.Sent {
		if id := m.ActionID(); id != "" {
			out[id] = m
		}
	}
	return out
}

// Events returns the packets that answer no recorded action (the
// asynchronous event stream), in order.
func (r *Recording) Events() []Packet {
	ids := r.ids()
	var out []Packet
	for _, p := range r.Packets {
		if _, ok := ids[p.Msg.ActionID()]; ok && p.Msg.ActionID() != "" {
			continue
		}
		if p.Msg.Kind() == ami.KindEvent {
			out = append(out, p)
		}
	}
	return out
}

// Answers maps actions to recorded answers.
type Answers struct {
	mu    sync.Mutex
	queue map[string][]answer
}

type answer struct {
	id  string // recorded ActionID
	raw []byte // response + list items + Complete, concatenated
}

func key(action, channel, variable string) string {
	return strings.ToLower(action + "|" + channel + "|" + variable)
}

// NewAnswers returns an empty table.
func NewAnswers() *Answers { return &Answers{queue: map[string][]answer{}} }

// AddRecording adds every answered action of r (matched by ActionID).
func (a *Answers) AddRecording(r *Recording) {
	for _, m := range r.Sent {
		id := m.ActionID()
		if id == "" {
			continue
		}
		var raw []byte
		for _, p := range r.Packets {
			if p.Msg.ActionID() == id {
				raw = append(raw, p.Raw...)
			}
		}
		if raw != nil {
			a.Add(m.Get("Action"), m.Get("Channel"), m.Get("Variable"), id, raw)
		}
	}
}

// AddSlice adds a cut-out answer (ami-<action>.raw) for one action, taking the
// recorded ActionID from its first packet.
func (a *Answers) AddSlice(action, channel, variable string, raw []byte) error {
	_, pkts, err := Split(raw)
	if err != nil || len(pkts) == 0 {
		return fmt.Errorf("amitest: slice for %s: %v", action, err)
	}
	a.Add(action, channel, variable, pkts[0].Msg.ActionID(), raw)
	return nil
}

// AddFile is AddSlice with the answer read from the file at path; an error
// fails the test.
func (a *Answers) AddFile(tb testing.TB, action, channel, variable, path string) {
	tb.Helper()
	raw, err := os.ReadFile(path)
	if err == nil {
		err = a.AddSlice(action, channel, variable, raw)
	}
	if err != nil {
		tb.Fatal(err)
	}
}

// Add queues an answer. Answers are used in order; the last one is reused.
func (a *Answers) Add(action, channel, variable, recordedID string, raw []byte) {
	a.mu.Lock()
	defer a.mu.Unlock()
	k := key(action, channel, variable)
	a.queue[k] = append(a.queue[k], answer{id: recordedID, raw: raw})
}

func (a *Answers) find(action, channel, variable string) (answer, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, k := range []string{key(action, channel, variable), key(action, "", "")} {
		q := a.queue[k]
		if len(q) == 0 {
			continue
		}
		ans := q[0]
		if len(q) > 1 {
			a.queue[k] = q[1:]
		}
		return ans, true
	}
	return answer{}, false
}

// Rewrite replaces the recorded ActionID line with the client's (or drops it
// when the client sent none).
func Rewrite(raw []byte, recordedID, id string) []byte {
	old := []byte("ActionID: " + recordedID + "\r\n")
	repl := []byte{}
	if id != "" {
		repl = []byte("ActionID: " + id + "\r\n")
	}
	return bytes.ReplaceAll(raw, old, repl)
}

// Session scripts one accepted connection.
type Session struct {
	Events    []Packet
	DropAfter int           // > 0: close the connection after writing this many events
	Interval  time.Duration // pause between events
	Answers   *Answers      // when set, consulted before Server.Answers
	// StartAfter, when set, holds the events back until the first answer to
	// this action (e.g. "CoreShowChannels") was written, so a resync snapshot
	// is consistent with the stream as a real Asterisk's would be.
	StartAfter string
}

// Server is the fake manager.
type Server struct {
	Banner    []byte            // default "Asterisk Call Manager/9.0.0\r\n"
	Users     map[string]string // username → secret
	Challenge string            // MD5 challenge, default "64290949" (recorded)
	// RefusePlain refuses a Login with a plain Secret (only MD5 passes).
	RefusePlain bool
	Answers     *Answers
	Sessions    []Session // connection k uses Sessions[min(k, len-1)]

	// StreamDone receives the session index when a session wrote all of its
	// events (or dropped the connection). Buffered; never blocks the server.
	StreamDone chan int

	ln      net.Listener
	wg      sync.WaitGroup
	nconn   atomic.Int64
	written atomic.Int64
	mu      sync.Mutex
	conns   map[net.Conn]bool
	closed  bool
}

// Start listens on 127.0.0.1:0 and serves until Close (registered with tb.Cleanup).
func (s *Server) Start(tb testing.TB) {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Skipf("amitest: no loopback listener: %v", err)
	}
	s.Serve(tb, ln)
}

// Serve serves connections accepted on ln until Close (registered with tb.Cleanup).
func (s *Server) Serve(tb testing.TB, ln net.Listener) {
	s.init()
	s.ln = ln
	s.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.serve(c)
		}
	})
	tb.Cleanup(s.Close)
}

func (s *Server) init() {
	if s.Banner == nil {
		s.Banner = []byte("Asterisk Call Manager/9.0.0\r\n")
	}
	if s.Challenge == "" {
		s.Challenge = "64290949"
	}
	if s.Answers == nil {
		s.Answers = NewAnswers()
	}
	if s.StreamDone == nil {
		s.StreamDone = make(chan int, 64)
	}
	if s.conns == nil {
		s.conns = map[net.Conn]bool{}
	}
}

// Addr is the listening address.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Pipe serves one connection over net.Pipe and returns the client end.
func (s *Server) Pipe() net.Conn {
	s.init()
	client, server := net.Pipe()
	s.serve(server)
	return client
}

// Connections counts accepted connections.
func (s *Server) Connections() int { return int(s.nconn.Load()) }

// EventsWritten counts event packets written over all connections.
func (s *Server) EventsWritten() int { return int(s.written.Load()) }

// Close stops the listener, closes every connection and waits.
func (s *Server) Close() {
	s.mu.Lock()
	s.closed = true
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	if s.ln != nil {
		s.ln.Close()
	}
	s.wg.Wait()
}

type sconn struct {
	s      *Server
	nc     net.Conn
	wmu    sync.Mutex
	sess   Session
	idx    int
	authed bool
	events bool
	start  sync.Once
}

func (c *sconn) write(b []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_, err := c.nc.Write(b)
	return err
}

func (s *Server) serve(nc net.Conn) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		nc.Close()
		return
	}
	s.conns[nc] = true
	s.mu.Unlock()
	k := int(s.nconn.Add(1)) - 1
	c := &sconn{s: s, nc: nc, idx: min(k, max(len(s.Sessions)-1, 0))}
	if len(s.Sessions) > 0 {
		c.sess = s.Sessions[c.idx]
	}
	s.wg.Go(func() {
		defer func() {
			nc.Close()
			s.mu.Lock()
			delete(s.conns, nc)
			s.mu.Unlock()
		}()
		if c.write(s.Banner) != nil {
			return
		}
		var streams sync.WaitGroup
		defer streams.Wait()
		rd := ami.NewReader(nc, ami.Limits{})
		for {
			m, err := rd.ReadMessage()
			if err != nil {
				var pe *ami.ProtocolError
				if errors.As(err, &pe) {
					continue
				}
				nc.Close()
				return
			}
			if !c.handle(m, &streams) {
				nc.Close()
				return
			}
		}
	})
}

const (
	tplAccepted = "Response: Success\r\nActionID: @\r\nMessage: Authentication accepted\r\n\r\n"
	tplFailed   = "Response: Error\r\nActionID: @\r\nMessage: Authentication failed\r\n\r\n"
	tplDenied   = "Response: Error\r\nActionID: @\r\nMessage: Permission denied\r\n\r\n"
	tplChall    = "Response: Success\r\nActionID: @\r\nChallenge: %s\r\n\r\n"
	tplGoodbye  = "Response: Goodbye\r\nActionID: @\r\nMessage: Thanks for all the fish.\r\n\r\n"
	tplNoChan   = "Response: Error\r\nActionID: @\r\nMessage: No such channel\r\n\r\n"
	tplUnknown  = "Response: Error\r\nActionID: @\r\nMessage: Invalid/unknown command: %s. Use Action: ListCommands to show available commands.\r\n\r\n"
	tplMissing  = "Response: Error\r\nActionID: @\r\nMessage: Missing action in request\r\n\r\n"
)

// tpl renders one of the recorded response shapes above with the client's ActionID.
func tpl(t, id string, args ...any) []byte {
	if len(args) > 0 {
		t = fmt.Sprintf(t, args...)
	}
	return Rewrite([]byte(t), "@", id)
}

// handle answers one client packet; false closes the connection.
func (c *sconn) handle(m ami.Message, streams *sync.WaitGroup) bool {
	id := m.ActionID()
	action := m.Get("Action")
	switch strings.ToLower(action) {
	case "":
		return c.write(tpl(tplMissing, id)) == nil
	case "challenge":
		return c.write(tpl(tplChall, id, c.s.Challenge)) == nil
	case "login":
		if c.authed {
			return c.write(tpl("Response: Success\r\nActionID: @\r\nMessage: Already authenticated\r\n\r\n", id)) == nil
		}
		secret, ok := c.s.Users[m.Get("Username")]
		if strings.EqualFold(m.Get("AuthType"), "MD5") {
			sum := md5.Sum([]byte(c.s.Challenge + secret))
			ok = ok && strings.EqualFold(m.Get("Key"), hex.EncodeToString(sum[:]))
		} else {
			ok = ok && !c.s.RefusePlain && secret == m.Get("Secret")
		}
		if !ok {
			_ = c.write(tpl(tplFailed, id))
			return false // Asterisk closes the socket after a failed login
		}
		c.authed = true
		if err := c.write(tpl(tplAccepted, id)); err != nil {
			return false
		}
		ev := strings.ToLower(m.Get("Events"))
		c.events = ev != "off" && ev != "no" && ev != "false" && ev != "0"
		if c.events && c.sess.StartAfter == "" {
			c.start.Do(func() { streams.Go(c.stream) })
		}
		return true
	case "logoff":
		_ = c.write(tpl(tplGoodbye, id))
		return false
	}
	if !c.authed {
		return c.write(tpl(tplDenied, id)) == nil
	}
	var ans answer
	ok := false
	if c.sess.Answers != nil {
		ans, ok = c.sess.Answers.find(action, m.Get("Channel"), m.Get("Variable"))
	}
	if !ok {
		ans, ok = c.s.Answers.find(action, m.Get("Channel"), m.Get("Variable"))
	}
	switch {
	case ok:
		if c.write(Rewrite(ans.raw, ans.id, id)) != nil {
			return false
		}
		if c.events && strings.EqualFold(action, c.sess.StartAfter) {
			c.start.Do(func() { streams.Go(c.stream) })
		}
		return true
	case strings.EqualFold(action, "Getvar") && m.Get("Channel") != "":
		return c.write(tpl(tplNoChan, id)) == nil
	case strings.EqualFold(action, "Ping"):
		return c.write(tpl("Response: Success\r\nActionID: @\r\nPing: Pong\r\nTimestamp: 1795560334.230918\r\n\r\n", id)) == nil
	}
	return c.write(tpl(tplUnknown, id, action)) == nil
}

// stream writes the session's events in order, then reports on StreamDone.
func (c *sconn) stream() {
	defer func() {
		select {
		case c.s.StreamDone <- c.idx:
		default:
		}
	}()
	for i, p := range c.sess.Events {
		if c.sess.DropAfter > 0 && i == c.sess.DropAfter {
			c.nc.Close()
			return
		}
		if c.sess.Interval > 0 {
			time.Sleep(c.sess.Interval)
		}
		if c.write(p.Raw) != nil {
			return
		}
		c.s.written.Add(1)
	}
}

// Gather reads every unlabelled gauge and counter of reg into name → value
// (the last series of a labelled one).
func Gather(tb testing.TB, reg prometheus.Gatherer) map[string]float64 {
	tb.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		tb.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			out[mf.GetName()] = m.GetGauge().GetValue() + m.GetCounter().GetValue()
		}
	}
	return out
}
