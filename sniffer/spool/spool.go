// Package spool stores calls the way VoIPmonitor lays out its spool
// (spec/voipmonitor.md §7): per call, the SIP packets and the RTP/RTCP
// packets as pcap files and the decoded audio as a WAV file, under
// spooldir/YYYY-MM-DD/HH/MM/{SIP,RTP,AUDIO}/<fbasename>.{pcap,wav}.
//
// Files are written incrementally as packets arrive, through a bounded
// buffer per file, with at most MaxOpenFiles descriptors open (an LRU),
// under a temporary name (".tmp" appended) renamed when the call ends.
//
// Pausing (pausecall, spec §6): while a call is paused its RTP packets are
// still stored, with the payload replaced by the codec's silence (G.711;
// headers, sequence and timing kept, UDP checksum fixed), or cut after the
// RTP header for other codecs; the WAV and live listeners get silence.
//
// The spool also owns each call's decoded audio (package audio): one
// decode per call, shared by the WAV writer and every live listener.
package spool

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"pbx-agent/sniffer/audio"
	"pbx-agent/sniffer/call"
	"pbx-agent/sniffer/decode"
	"pbx-agent/sniffer/rtp"
	"pbx-agent/sniffer/sip"
)

// RTPMode is voipmonitor.conf's savertp.
type RTPMode uint8

const (
	RTPOff    RTPMode = iota // savertp = no
	RTPFull                  // savertp = yes
	RTPHeader                // savertp = header: RTP cut after its header
)

// sipBufSize buffers a SIP pcap: a call's signalling is a few KB.
const sipBufSize = 4 << 10

// ParseRTPMode parses a savertp value: yes/no/1/0/header.
func ParseRTPMode(s string) (RTPMode, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "yes", "1", "true", "on":
		return RTPFull, nil
	case "no", "0", "false", "off", "":
		return RTPOff, nil
	case "header":
		return RTPHeader, nil
	}
	return RTPOff, fmt.Errorf("%w: savertp %q", ErrConfig, s)
}

// Config configures a Spool. The zero value stores nothing but still
// decodes audio for live listeners.
type Config struct {
	Dir       string  // spooldir
	SaveSIP   bool    // savesip
	SaveRTP   RTPMode // savertp
	SaveRTCP  bool    // savertcp (into the RTP pcap)
	SaveAudio string  // saveaudio: "wav" or "" (none)
	// AudioMono writes one mixed channel instead of stereo caller-left /
	// callee-right (saveaudio_stereo = no).
	AudioMono bool
	// AudioDelay is how long decoded audio waits for late packets (default
	// audio.DefaultDelay).
	AudioDelay time.Duration
	// MaxOpenFiles bounds the descriptors open at once (default 4096). Keep
	// it above the files of the active calls (2 or 3 per call): past it,
	// writes reopen files (one open+close per buffer flush).
	MaxOpenFiles int
	// BufferSize is the write buffer of each RTP and WAV file (default
	// 16 KiB; SIP files use at most 4 KiB): memory per call is bounded by
	// two or three of these.
	BufferSize int
	// Location names the date directories (nil = time.Local; VoIPmonitor
	// uses local time unless utc = yes).
	Location *time.Location
	Logger   *slog.Logger
}

// Stats counts the spool's work.
type Stats struct {
	Calls         int // calls tracked now
	SIPPackets    uint64
	RTPPackets    uint64
	RTCPPackets   uint64
	OtherPackets  uint64 // non-RTP datagrams on media ports (STUN, …), stored whole
	PausedPackets uint64 // RTP packets stored silenced or cut while paused
	HeaderOnly    uint64 // RTP packets stored cut after the header
	Fragments     uint64 // packets rebuilt from IP fragments: only the last fragment is stored (none while paused)
	LinkMismatch  uint64
	UnknownCall   uint64 // media for a call the spool never saw SIP of
	Files         uint64 // files completed (renamed)
	Bytes         uint64 // bytes written to disk
	OpenFiles     int
	PeakOpenFiles int
	Reopens       uint64 // descriptors reopened after an LRU eviction
	Evictions     uint64
	Errors        uint64 // files given up after an I/O error
}

// Spool stores calls. Its packet hooks run on the packet-path goroutine;
// Subscribe, Stats and Close may be called from others.
type Spool struct {
	cfg    Config
	log    *slog.Logger
	paused func(ref uint64) bool

	mu      sync.Mutex
	calls   map[uint64]*callSpool
	files   files
	hdr     rtp.Header
	scratch []byte
	wavBuf  []byte
	stats   Stats
}

type callSpool struct {
	ref    uint64
	callID string
	base   string
	start  time.Time
	sip    *pcapFile
	rtp    *pcapFile
	wav    *file
	audio  *audio.Call
	paused bool
	// last TCP segment stored, so a segment holding several SIP messages
	// is stored once.
	lastTCP struct {
		t   time.Time
		seq uint32
		n   int
	}
}

// New returns a spool. paused reports whether recording of a call is
// paused now (call.Table.Paused); nil means never.
func New(cfg Config, paused func(ref uint64) bool) (*Spool, error) {
	switch cfg.SaveAudio {
	case "", "wav":
	default:
		return nil, fmt.Errorf("%w: saveaudio %q (only wav)", ErrConfig, cfg.SaveAudio)
	}
	if cfg.Dir == "" && (cfg.SaveSIP || cfg.SaveRTP != RTPOff || cfg.SaveRTCP || cfg.SaveAudio != "") {
		return nil, fmt.Errorf("%w: no spool directory", ErrConfig)
	}
	if cfg.MaxOpenFiles <= 0 {
		cfg.MaxOpenFiles = 4096
	}
	if cfg.BufferSize <= 0 {
		cfg.BufferSize = 16 << 10
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if paused == nil {
		paused = func(uint64) bool { return false }
	}
	return &Spool{
		cfg:    cfg,
		log:    cfg.Logger.With("component", "spool"),
		paused: paused,
		calls:  make(map[uint64]*callSpool),
		files:  files{max: cfg.MaxOpenFiles, bufSize: cfg.BufferSize},
	}, nil
}

func (s *Spool) path(c *callSpool, typ, ext string) string {
	return Path(s.cfg.Dir, c.start, s.cfg.Location, typ, c.base, ext)
}

// SIP is the sniffer's SIPHook: it starts tracking the call on its first
// message and stores the packet in the call's SIP pcap. Messages not tied
// to a call (ref 0: REGISTER, OPTIONS) are not stored.
func (s *Spool) SIP(m *sip.Message, meta call.Meta, ref uint64, p *decode.Packet) {
	if ref == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.calls[ref]
	if c == nil {
		c = &callSpool{ref: ref, callID: string(m.CallID), base: FBasename(string(m.CallID)), start: meta.Time}
		s.calls[ref] = c
		if s.cfg.SaveAudio == "wav" {
			s.startAudio(c)
		}
	}
	if !s.cfg.SaveSIP {
		return
	}
	if p.Transport == decode.TCP {
		l := &c.lastTCP
		if l.t.Equal(p.Time) && l.seq == p.TCPSeq && l.n == len(p.Frame) {
			return
		}
		l.t, l.seq, l.n = p.Time, p.TCPSeq, len(p.Frame)
	}
	if p.Fragment {
		s.stats.Fragments++
	}
	if c.sip == nil {
		c.sip = newPcapFile(s.files.newFile(s.path(c, TypeSIP, "pcap"), sipBufSize))
	}
	s.stats.SIPPackets++
	s.store(c.sip, p, p.Frame, len(p.Frame))
}

func (s *Spool) store(f *pcapFile, p *decode.Packet, data []byte, origLen int) {
	if err := f.write(p.Link, p.Time, data, origLen); err != nil {
		if errors.Is(err, ErrLinkMismatch) {
			s.stats.LinkMismatch++
			return
		}
		if !f.logged {
			f.logged = true
			s.log.Warn("spool file failed", "file", f.tmp, "err", err)
		}
	}
}

// HandleMedia implements sniffer.MediaHandler: RTP, RTCP and other
// datagrams of a known call go to its RTP pcap (as the options say), RTP
// also to its decoded audio.
func (s *Spool) HandleMedia(p *decode.Packet, ref uint64, party call.Party, toParty bool) {
	paused := s.paused(ref) // before s.mu: the table's lock is never taken under ours
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.calls[ref]
	if c == nil {
		s.stats.UnknownCall++
		return
	}
	if paused != c.paused {
		c.paused = paused
		s.log.Info("recording pause changed", "callref", fmt.Sprintf("0x%x", ref), "callid", c.callID, "paused", paused, "time", p.Time)
	}
	if rtp.LooksLikeRTCP(p.Payload) {
		s.stats.RTCPPackets++
		if s.cfg.SaveRTCP {
			s.storeMedia(c, p, p.Frame, len(p.Frame))
		}
		return
	}
	n, err := s.hdr.Unmarshal(p.Payload)
	if err != nil || !rtp.LooksLikeRTP(p.Payload) {
		s.stats.OtherPackets++
		if s.cfg.SaveRTP != RTPOff {
			s.storeMedia(c, p, p.Frame, len(p.Frame))
		}
		return
	}
	s.stats.RTPPackets++
	payload := s.hdr.Payload(p.Payload, n)
	if c.audio != nil {
		// The sender is the party's peer when matched on the destination.
		dir := audio.FromCallee
		if (toParty && party == call.PartyCallee) || (!toParty && party == call.PartyCaller) {
			dir = audio.FromCaller
		}
		c.audio.Feed(dir, &s.hdr, payload, p.Time, paused)
	}
	if s.cfg.SaveRTP == RTPOff {
		return
	}
	if paused {
		s.stats.PausedPackets++
	}
	if !paused && s.cfg.SaveRTP == RTPFull {
		if p.Fragment {
			s.stats.Fragments++
		}
		s.storeMedia(c, p, p.Frame, len(p.Frame))
		return
	}
	off := payloadOffset(p.Frame, p.Payload)
	if off < 0 {
		// Rebuilt from fragments: the frame holds only the last one and
		// the payload cannot be silenced in it; store nothing.
		s.stats.Fragments++
		return
	}
	if paused && s.cfg.SaveRTP == RTPFull && s.silence(p, off, n) {
		s.storeMedia(c, p, s.scratch, len(p.Frame))
		return
	}
	s.stats.HeaderOnly++
	s.storeMedia(c, p, p.Frame[:off+n], len(p.Frame))
}

// silence copies the frame into the scratch buffer with the RTP payload
// replaced by the codec's silence and the UDP checksum fixed; false when
// the codec has no byte-wise silence.
func (s *Spool) silence(p *decode.Packet, off, n int) bool {
	if _, ok := rtp.SilenceByte(s.hdr.PayloadType); !ok {
		return false
	}
	s.scratch = append(s.scratch[:0], p.Frame...)
	end := off + len(p.Payload)
	start := off + n
	rtp.FillSilence(s.hdr.PayloadType, s.scratch[start:end-int(s.hdr.PaddingSize)])
	if off >= 8 && p.Transport == decode.UDP {
		ck := s.scratch[off-2 : off]
		if hc := uint16(ck[0])<<8 | uint16(ck[1]); hc != 0 {
			// Words from start (even: 8-byte UDP header + 4n-byte RTP
			// header) to the datagram's end.
			nc := adjustChecksum(hc, p.Frame[start:end], s.scratch[start:end])
			ck[0], ck[1] = byte(nc>>8), byte(nc)
		}
	}
	return true
}

func (s *Spool) storeMedia(c *callSpool, p *decode.Packet, data []byte, origLen int) {
	if c.rtp == nil {
		c.rtp = newPcapFile(s.files.newFile(s.path(c, TypeRTP, "pcap"), 0))
	}
	s.store(c.rtp, p, data, origLen)
}

// startAudio attaches a decoder to the call, writing the WAV when saveaudio
// is on. Runs with s.mu held; the sink runs under it too (Feed and Close
// are only called with s.mu held).
func (s *Spool) startAudio(c *callSpool) {
	cfg := audio.Config{Delay: s.cfg.AudioDelay}
	if s.cfg.SaveAudio == "wav" {
		cfg.Sink = func(f *audio.Frame) { s.writeWAV(c, f) }
	}
	c.audio = audio.NewCall(cfg)
}

func (s *Spool) channels() int {
	if s.cfg.AudioMono {
		return 1
	}
	return 2
}

func (s *Spool) writeWAV(c *callSpool, f *audio.Frame) {
	if c.wav == nil {
		c.wav = s.files.newFile(s.path(c, TypeAudio, "wav"), 0)
		s.wavBuf = audio.AppendWAVHeader(s.wavBuf[:0], s.channels(), 0)
		c.wav.Write(s.wavBuf)
	}
	if s.cfg.AudioMono {
		s.wavBuf = f.AppendMono(s.wavBuf[:0])
	} else {
		s.wavBuf = f.AppendStereo(s.wavBuf[:0])
	}
	c.wav.Write(s.wavBuf) // an error is kept in the file and reported at finish
}

// Subscribe returns a live feed of a call's decoded audio (20 ms frames,
// both directions; silence while paused), starting the decoder if saveaudio
// is off. depth bounds the queue (0 = audio.DefaultDepth); a full queue
// drops its oldest frame and counts it. The channel closes when the call
// ends. ErrUnknownCall when the spool does not track ref.
func (s *Spool) Subscribe(ref uint64, depth int) (*audio.Subscription, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.calls[ref]
	if c == nil {
		return nil, fmt.Errorf("%w: 0x%x", ErrUnknownCall, ref)
	}
	if c.audio == nil {
		s.startAudio(c)
	}
	return c.audio.Subscribe(depth)
}

// AudioStats returns the decoder figures of an active call.
func (s *Spool) AudioStats(ref uint64) (audio.Stats, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.calls[ref]
	if c == nil || c.audio == nil {
		return audio.Stats{}, false
	}
	return c.audio.Stats(), true
}

// CallEnded is the call table's OnCallEnd hook: it flushes the call's
// audio, completes its files (renamed to their final names) and forgets
// it.
func (s *Spool) CallEnded(cdr *call.CDR) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.calls[cdr.CallRef]
	if c == nil || c.callID != cdr.CallID {
		return
	}
	if err := s.finish(c); err != nil {
		s.log.Warn("spool files incomplete", "callid", c.callID, "err", err)
	}
}

func (s *Spool) finish(c *callSpool) error {
	delete(s.calls, c.ref)
	if c.audio != nil {
		c.audio.Close() // emits the last frames into the WAV
	}
	var errs []error
	done := func(f *file, patch func(*os.File) error) {
		if f == nil {
			return
		}
		if err := f.finish(patch); err != nil {
			errs = append(errs, err)
			return
		}
		s.stats.Files++
	}
	if c.sip != nil {
		done(c.sip.file, nil)
	}
	if c.rtp != nil {
		done(c.rtp.file, nil)
	}
	if c.wav != nil {
		ch := s.channels()
		done(c.wav, func(fd *os.File) error {
			data := c.wav.size - audio.WAVHeaderSize
			_, err := fd.WriteAt(audio.AppendWAVHeader(nil, ch, uint32(data)), 0)
			return err
		})
	}
	return errors.Join(errs...)
}

// Close completes every call still tracked (as if it ended now) and
// returns the I/O errors met; it stops early, leaving ".tmp" files, when
// ctx ends.
func (s *Spool) Close(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	refs := make([]uint64, 0, len(s.calls))
	for ref := range s.calls {
		refs = append(refs, ref)
	}
	slices.Sort(refs)
	var errs []error
	for _, ref := range refs {
		if err := ctx.Err(); err != nil {
			errs = append(errs, fmt.Errorf("spool: close: %d calls left: %w", len(s.calls), err))
			break
		}
		if err := s.finish(s.calls[ref]); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Stats returns the counters so far.
func (s *Spool) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.Calls = len(s.calls)
	st.Bytes = s.files.written
	st.OpenFiles = s.files.open
	st.PeakOpenFiles = s.files.peak
	st.Reopens = s.files.reopens
	st.Evictions = s.files.evictions
	st.Errors = s.files.errors
	return st
}
