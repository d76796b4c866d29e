// Package spool stores calls the way VoIPmonitor lays out its spool
// (spec/voipmonitor.md §7): per call, the SIP packets and the RTP/RTCP
// packets as pcap files and the decoded audio as a WAV file, under
// spooldir/YYYY-MM-DD/HH/MM/{SIP,RTP,AUDIO}/<fbasename>.{pcap,wav}.
//
// Files are written incrementally as packets arrive, under a temporary
// name (".tmp" appended) renamed when the call ends. The packet path only
// copies bytes into each file's buffer; a full buffer is handed, through a
// queue bounded in bytes (MaxQueued), to the spool's I/O goroutine(s),
// which alone create, write, close and rename files, with at most
// MaxOpenFiles descriptors open (an LRU). When the disk falls behind and
// the queue is full, packets are dropped and counted, never waited for
// (unless WaitForDisk, for capture-file replay).
//
// Pausing (pausecall, spec §6): while a call is paused its RTP packets are
// still stored, with the payload replaced by the codec's silence (G.711;
// headers, sequence and timing kept, UDP checksum fixed), or cut after the
// RTP header for other codecs; the WAV and live listeners get silence.
//
// The spool also owns each call's decoded audio (package audio): one
// decode per call, shared by the WAV writer and every live listener. A call
// whose SDP says RTP/SAVP (SRTP) is decoded as silence: its payload is
// ciphertext (its RTP pcap keeps the packets as they are).
//
// Cleaning (voipmonitor.conf maxpool*, Config.Pool): a cleaner goroutine
// keeps an index of the minute directories and their bytes per kind,
// scanned from disk at start and then fed by the I/O goroutines as files
// are created and completed. Past a size or age limit it removes the
// oldest minute directories (or one kind's, for a per-kind limit), never a
// file of a call still open. Merge and MergeCall give a call's SIP and RTP
// pcaps as one pcap in time order.
package spool

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"pbx-agent/sniffer/audio"
	"pbx-agent/sniffer/call"
	"pbx-agent/sniffer/codec"
	"pbx-agent/sniffer/decode"
	"pbx-agent/sniffer/rtp"
	"pbx-agent/sniffer/sdp"
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

// zipBufFactor sizes a compressed RTP pcap's write buffers (× BufferSize:
// 64 KiB by default). Each buffer becomes one gzip member, and a member
// costs a fixed part (its Huffman tables, a write) whatever its size: on
// G.711 calls 64 KiB members take about a third less CPU per byte than
// 16 KiB ones and compress about 15 % smaller (BenchmarkGzipMember), for
// 48 KiB more memory per call while it fills.
const zipBufFactor = 4

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
	Dir      string  // spooldir
	SaveSIP  bool    // savesip
	SaveRTP  RTPMode // savertp
	SaveRTCP bool    // savertcp (into the RTP pcap)
	// SaveAudio is saveaudio: "wav" (16-bit PCM at the call's native
	// rate), "ogg" (Ogg/Opus; WAV in a build without libopus, said once at
	// start) or "" (none).
	SaveAudio string
	// AudioMono writes one mixed channel instead of stereo caller-left /
	// callee-right (saveaudio_stereo = no).
	AudioMono bool
	// AudioDelay is how long decoded audio waits for late packets (default
	// audio.DefaultDelay).
	AudioDelay time.Duration
	// MaxOpenFiles bounds the descriptors open at once (default 4096). Keep
	// it above the files of the active calls (2 or 3 per call): past it,
	// writes reopen files (one open+close per buffer written).
	MaxOpenFiles int
	// BufferSize is the write buffer of each RTP and WAV file (default
	// 16 KiB; SIP files use at most 4 KiB, a compressed RTP file
	// zipBufFactor × BufferSize): the memory a call holds while filling is
	// bounded by two or three of these.
	BufferSize int
	// MaxQueued bounds the bytes of full buffers waiting for the I/O
	// goroutines (default 64 MiB). When the disk falls that far behind,
	// packets that need a fresh buffer are dropped (never blocked) and
	// counted in Stats.Dropped*; data already queued is always written.
	MaxQueued int64
	// WaitForDisk makes the packet side wait for room instead of dropping
	// when MaxQueued bytes are queued. Only for a capture file read as
	// fast as possible, where waiting slows the reader and loses nothing;
	// never for live capture (the kernel would drop instead).
	WaitForDisk bool
	// Shards is the number of call shards, each under its own lock
	// (default GOMAXPROCS): set it to the sniffer's media workers
	// (sniffer.Config.Workers), which split the calls by the same
	// call.Shard, so that each worker takes only its own shard's lock.
	Shards int
	// IOWorkers is the number of I/O goroutines (default 1). Each owns the
	// files given to it (round robin) and MaxOpenFiles/IOWorkers of the
	// descriptors.
	IOWorkers int
	// Location names the date directories (nil = time.Local; VoIPmonitor
	// uses local time unless utc = yes).
	Location *time.Location
	// ZipSIP and ZipRTP are the gzip levels (1-9) of the SIP and RTP pcaps
	// (voipmonitor.conf pcap_dump_zip_sip/_rtp with pcap_dump_ziplevel_sip/
	// _rtp); 0 writes them plain. A compressed pcap is named .pcap.gz and is
	// a series of gzip members, one per write buffer, each compressed by an
	// I/O goroutine: gzip readers (zcat, tshark, Wireshark) read the series
	// as one file, and a file cut short by a crash stays readable up to its
	// last whole member.
	ZipSIP, ZipRTP int
	// Pool bounds the spool's size and age (maxpool*): a cleaner goroutine
	// removes the oldest minute directories past a limit. Zero: no limit,
	// no cleaner.
	Pool   PoolLimits
	Logger *slog.Logger
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
	UnknownCall   uint64 // media for a call the spool never saw SIP of (or after Close)
	// Packets (and WAV frames) not stored because MaxQueued bytes were
	// waiting for the disk; they are still counted above.
	DroppedSIP    uint64
	DroppedRTP    uint64 // RTP packets (whole, silenced or cut)
	DroppedRTCP   uint64
	DroppedOther  uint64
	DroppedAudio  uint64 // 20 ms WAV frames
	Queued        int64  // bytes waiting for the I/O goroutines now
	PeakQueued    int64
	Files         uint64 // files completed (renamed)
	Bytes         uint64 // bytes written to disk
	BytesRaw      uint64 // the same bytes before compression (= Bytes without pcap_dump_zip)
	OpenFiles     int
	PeakOpenFiles int
	Reopens       uint64 // descriptors reopened after an LRU eviction
	Evictions     uint64
	Errors        uint64 // files given up after an I/O error
	// Cleaning (only with Config.Pool limits).
	PoolBytes    int64  // bytes of completed files in the spool now (as indexed)
	PoolFiles    int    // their number
	CleanPasses  uint64 // cleaning passes run
	CleanedFiles uint64 // files removed by the cleaner
	CleanedBytes int64  // their bytes
	CleanedDirs  uint64 // kind directories (SIP, RTP, AUDIO of a minute) removed whole
	CleanErrors  uint64 // removals that failed
}

// Spool stores calls. Its packet hooks (SIP, HandleMedia, CallEnded) run
// on the packet path or its media workers and only copy bytes into memory:
// files are created, written, closed and renamed by the spool's I/O
// goroutines, run by Run and joined by Close. The calls are split into
// shards by call reference (call.Shard), each under its own lock, so media
// workers that split the calls the same way (Config.Shards) store their
// packets at the same time without waiting for each other. Subscribe,
// AudioStats, Stats and Close may be called from other goroutines.
type Spool struct {
	cfg    Config
	log    *slog.Logger
	format audio.Format // of the AUDIO files

	bufs    buffers
	io      ioStats
	workers []*worker
	next    atomic.Uint32 // worker for the next file
	pool    *cleaner      // nil without limits
	closing chan struct{}

	// life orders Run and Close; not mu, which the packet side may hold
	// while it waits for the workers (WaitForDisk).
	life    sync.Mutex
	started bool               // Run ran
	stopped bool               // Close began
	cancel  context.CancelFunc // Run's; nil until Run starts

	shards     []*shard
	drops      drops        // packets and frames dropped for lack of queue room
	dropLogged atomic.Int64 // when drops were last logged (Unix ns)
}

// shard holds the calls of one call.Shard and the packet side's work on
// them, under its mu. Its methods run with mu held.
type shard struct {
	*Spool
	mu       sync.Mutex
	closed   bool
	calls    map[uint64]*callSpool
	scratch  []byte
	audioBuf []byte       // one frame's bytes of an AUDIO file
	sdp      *sdp.Session // parses SDP bodies for their payload types
	stats    Stats        // the packet counters (SIPPackets … UnknownCall)
}

// drops counts what was not stored for lack of queue room (Stats.Dropped*).
type drops struct {
	sip, rtp, rtcp, other, audio atomic.Uint64
}

type callSpool struct {
	ref    uint64
	callID string
	base   string
	start  time.Time
	sip    *pcapFile
	rtp    *pcapFile
	wav    *file           // the AUDIO file (WAV or Ogg)
	rec    *audio.Recorder // its encoder: the first frame's rate
	audio  *audio.Call
	paused bool
	// dynamic: the payload types the call's SDPs named (for the decoders)
	dynamic dynamicPTs
	// history: bit pt-96 set when dynamic payload type pt's codec
	// decodes only from the stream's first packet (codec.NeedsHistory)
	history uint32
	// srtp: an SDP of the call offered or answered RTP/SAVP(F): its
	// payload is encrypted, so its decoded audio (WAV, live) is silence,
	// never the noise that ciphertext decodes to.
	srtp bool
	// last TCP segment stored, so a segment holding several SIP messages
	// is stored once.
	lastTCP struct {
		t   time.Time
		seq uint32
		n   int
	}
}

// savp is in the m= line of an SRTP stream: RTP/SAVP, RTP/SAVPF,
// UDP/TLS/RTP/SAVP(F).
var savp = []byte("RTP/SAVP")

// dropLogEvery is how often a spool that drops packets says so.
const dropLogEvery = 10 * time.Second

// New returns a spool; it starts nothing. Run runs its I/O goroutines,
// Close writes out what is queued and stops them. Whether a call's
// recording is paused comes with each packet (call.Media.Paused).
func New(cfg Config) (*Spool, error) {
	return newSpool(cfg, osFS{})
}

func newSpool(cfg Config, fsys fileSystem) (*Spool, error) {
	format, err := audio.ParseFormat(cfg.SaveAudio)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
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
	if cfg.MaxQueued <= 0 {
		cfg.MaxQueued = 64 << 20
	}
	for _, z := range []int{cfg.ZipSIP, cfg.ZipRTP} {
		if z < 0 || z > 9 {
			return nil, fmt.Errorf("%w: gzip level %d (1-9, or 0 for none)", ErrConfig, z)
		}
	}
	if cfg.IOWorkers <= 0 {
		cfg.IOWorkers = 1
	}
	cfg.IOWorkers = min(cfg.IOWorkers, cfg.MaxOpenFiles)
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Spool{
		cfg:     cfg,
		format:  format,
		log:     cfg.Logger.With("component", "spool"),
		closing: make(chan struct{}),
	}
	for range cmp.Or(max(cfg.Shards, 0), runtime.GOMAXPROCS(0)) {
		s.shards = append(s.shards, &shard{Spool: s, calls: make(map[uint64]*callSpool)})
	}
	if format == audio.FormatOgg {
		if enc, err := codec.NewOpusEncoder(8000, 1, 0); err != nil {
			s.format = audio.FormatWAV
			s.log.Warn("saveaudio = ogg needs libopus, absent from this build: writing WAV", "err", err)
		} else {
			enc.Close()
		}
	}
	s.bufs.max = cfg.MaxQueued
	s.bufs.freed = make(chan struct{}, 1)
	s.bufs.sizes = [3]int{min(sipBufSize, cfg.BufferSize), zipBufFactor * cfg.BufferSize, cfg.BufferSize}
	if cfg.Dir != "" && cfg.Pool.set() {
		s.pool = newCleaner(cfg.Dir, cfg.Location, cfg.Pool, cfg.Logger)
	}
	for i := range cfg.IOWorkers {
		n := cfg.MaxOpenFiles / cfg.IOWorkers
		if i < cfg.MaxOpenFiles%cfg.IOWorkers {
			n++
		}
		s.workers = append(s.workers, newWorker(fsys, s.log, &s.bufs, &s.io, n, s.pool))
	}
	return s, nil
}

// Run runs the spool's goroutines: the I/O workers and, with pool
// limits, the cleaner. Packets handed to the spool before Run are written
// once it runs. Run returns once Close has written everything out and
// stopped them, or once ctx ends: then the workers stop after their
// current write, leaving ".tmp" files. A Run after Close returns nil at
// once; a second Run returns ErrRunning.
func (s *Spool) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s.life.Lock()
	if s.stopped {
		s.life.Unlock()
		return nil // Close came first and wrote everything out
	}
	if s.started {
		s.life.Unlock()
		return ErrRunning
	}
	s.started, s.cancel = true, cancel
	s.life.Unlock()
	var wg sync.WaitGroup
	if s.pool != nil {
		wg.Go(func() { s.pool.run(ctx) })
	}
	for _, w := range s.workers {
		wg.Go(func() { w.run(ctx, s.closing) })
	}
	wg.Wait()
	return nil
}

// shardOf is the shard of a call reference.
func (s *Spool) shardOf(ref uint64) *shard { return s.shards[call.Shard(ref, len(s.shards))] }

// newFile returns c's file of a kind, buffered by bufSize bytes (0 = the
// spool's), on the next worker.
func (s *Spool) newFile(c *callSpool, kind uint8, ext string, bufSize int) *file {
	if bufSize <= 0 || bufSize > s.cfg.BufferSize {
		bufSize = s.cfg.BufferSize
	}
	w := s.workers[int(s.next.Add(1)-1)%len(s.workers)]
	zip := 0
	switch kind {
	case kindSIP:
		zip = s.cfg.ZipSIP
	case kindRTP:
		zip = s.cfg.ZipRTP
	}
	if zip > 0 {
		ext += ".gz"
		if kind == kindRTP {
			bufSize = s.bufs.sizes[1]
		}
	}
	final := Path(s.cfg.Dir, c.start, s.cfg.Location, kindDirs[kind], c.base, ext)
	return &file{final: final, tmp: final + ".tmp", w: w, bufSize: bufSize,
		minute: minuteKey(c.start, s.cfg.Location), kind: kind, zip: zip}
}

// reserve makes room for n contiguous bytes in f's filling buffer, handing
// the full buffer to the worker first; false (store nothing) when the
// queue is at its cap. A record bigger than the buffer gets a buffer of
// its own size.
func (s *shard) reserve(f *file, n int) bool {
	if len(f.buf)+n <= cap(f.buf) {
		return true
	}
	if len(f.buf) > 0 && !s.handoff(f, false) {
		return false
	}
	if f.buf != nil {
		s.bufs.put(f.buf)
	}
	f.buf = s.bufs.get(max(n, f.bufSize))
	if cap(f.buf) < n {
		f.buf = make([]byte, 0, n)
	}
	return true
}

// handoff queues f's filling buffer (and, when fin, the file's
// completion) for its worker. Only a non-final hand-off can be refused for
// lack of room: finishing moves memory already held, it adds none.
func (s *shard) handoff(f *file, fin bool) bool {
	b := f.buf
	if f.failed.Load() {
		// The worker gave the file up: nothing more goes to disk.
		if b != nil {
			s.bufs.put(b)
		}
		f.buf = nil
		if fin {
			f.w.push(op{f: f, fin: true, closing: s.closed})
		}
		return true
	}
	if b != nil && !s.bufs.enqueue(int64(cap(b)), fin) {
		if !s.cfg.WaitForDisk {
			return false
		}
		s.bufs.waitEnqueue(int64(cap(b)))
	}
	f.buf = nil
	f.w.push(op{f: f, buf: b, fin: fin, closing: s.closed})
	return true
}

// drop counts a packet (or frame) not stored for lack of queue room and
// logs once per dropLogEvery.
func (s *Spool) drop(counter *atomic.Uint64) {
	counter.Add(1)
	now := time.Now().UnixNano()
	last := s.dropLogged.Load()
	if now-last < int64(dropLogEvery) || !s.dropLogged.CompareAndSwap(last, now) {
		return
	}
	d := &s.drops
	s.log.Warn("spool disk too slow: packets dropped", "queued_bytes", s.bufs.queued.Load(), "max_queued", s.bufs.max,
		"dropped_sip", d.sip.Load(), "dropped_rtp", d.rtp.Load(), "dropped_rtcp", d.rtcp.Load(),
		"dropped_other", d.other.Load(), "dropped_audio_frames", d.audio.Load())
}

// SIP is the sniffer's SIPHook: it starts tracking the call on its first
// message and stores the packet in the call's SIP pcap. Messages not tied
// to a call (ref 0: REGISTER, OPTIONS) are not stored, nor anything after
// Close.
func (s *Spool) SIP(m *sip.Message, meta call.Meta, ref uint64, p *decode.Packet) {
	if ref == 0 {
		return
	}
	sh := s.shardOf(ref)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if !sh.closed {
		sh.sip(m, meta, ref, p)
	}
}

func (s *shard) sip(m *sip.Message, meta call.Meta, ref uint64, p *decode.Packet) {
	c := s.calls[ref]
	if c == nil {
		c = &callSpool{ref: ref, callID: string(m.CallID), base: FBasename(string(m.CallID)), start: meta.Time}
		s.calls[ref] = c
		if s.format != audio.FormatNone {
			s.startAudio(c)
		}
	}
	s.noteSDP(c, m)
	if !c.srtp && bytes.Contains(sip.SDPBody(m), savp) {
		c.srtp = true
		s.log.Info("SRTP call: its decoded audio is silence", "callref", fmt.Sprintf("0x%x", ref), "callid", c.callID)
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
		c.sip = newPcapFile(s.newFile(c, kindSIP, "pcap", sipBufSize))
	}
	s.stats.SIPPackets++
	if !s.store(c.sip, p, p.Frame, len(p.Frame)) {
		s.drop(&s.drops.sip)
	}
}

// store buffers one pcap record; false when it was dropped for lack of
// queue room (a link-type mismatch is counted, not reported).
func (s *shard) store(f *pcapFile, p *decode.Packet, data []byte, origLen int) bool {
	need := pcapRecordHeader + len(data)
	first := !f.started
	if first {
		need += pcapFileHeader
	} else if p.Link != f.link {
		s.stats.LinkMismatch++
		return true
	}
	if !s.reserve(f.file, need) {
		return false
	}
	if first {
		f.writeHeader(p.Link)
	}
	f.writeRecord(p.Time, data, origLen)
	return true
}

// HandleMedia implements sniffer.MediaHandler: RTP, RTCP and other
// datagrams of a known call go to its RTP pcap (as the options say), RTP
// also to its decoded audio. Nothing after Close, as for SIP.
func (s *Spool) HandleMedia(md *call.Media) {
	sh := s.shardOf(md.Ref)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	sh.handleMedia(md)
}

// HandleMediaBatch handles datagrams in order, taking a shard's lock once
// for consecutive datagrams of its calls (the sniffer's media workers hand
// them over a run at a time, each run of one worker's calls: one lock).
func (s *Spool) HandleMediaBatch(ms []call.Media) {
	var sh *shard
	for i := range ms {
		if next := s.shardOf(ms[i].Ref); next != sh {
			if sh != nil {
				sh.mu.Unlock()
			}
			sh = next
			sh.mu.Lock()
		}
		sh.handleMedia(&ms[i])
	}
	if sh != nil {
		sh.mu.Unlock()
	}
}

func (s *shard) handleMedia(md *call.Media) {
	if s.closed {
		// Not stored nor counted, as SIP after Close. A Close whose ctx
		// ended leaves calls tracked with their workers gone: storing
		// would queue buffers nobody writes, or with WaitForDisk wait
		// for room forever.
		return
	}
	p, ref, paused := md.Packet, md.Ref, md.Paused
	c := s.calls[ref]
	if c == nil {
		s.stats.UnknownCall++
		return
	}
	if paused != c.paused {
		c.paused = paused
		s.log.Info("recording pause changed", "callref", fmt.Sprintf("0x%x", ref), "callid", c.callID, "paused", paused, "time", p.Time)
	}
	if md.Kind == call.MediaRTCP {
		s.stats.RTCPPackets++
		if s.cfg.SaveRTCP && !s.storeMedia(c, p, p.Frame, len(p.Frame)) {
			s.drop(&s.drops.rtcp)
		}
		return
	}
	if md.Kind != call.MediaRTP {
		s.stats.OtherPackets++
		if (s.cfg.SaveRTP != RTPOff || md.Fax) && !s.storeMedia(c, p, p.Frame, len(p.Frame)) {
			s.drop(&s.drops.other)
		}
		return
	}
	s.stats.RTPPackets++
	n := md.HeaderLen
	payload := md.RTP.Payload(p.Payload, n)
	if c.audio == nil && !c.srtp && c.needsHistory(md.RTP.PayloadType) {
		// Decoded from the first packet so that a listener joining later
		// hears sound (see codec.NeedsHistory).
		s.startAudio(c)
	}
	if c.audio != nil {
		dir := audio.FromCallee
		if md.FromCaller() {
			dir = audio.FromCaller
		}
		c.audio.Feed(dir, &md.RTP, payload, p.Time, paused || c.srtp)
	}
	if s.cfg.SaveRTP == RTPOff && !md.Fax {
		return
	}
	if paused {
		s.stats.PausedPackets++
	}
	if !s.storeRTP(c, md, paused) {
		s.drop(&s.drops.rtp)
	}
}

// storeRTP stores an RTP packet whole, silenced or cut after its header;
// false when dropped. A fax call's packets are stored whole whatever
// savertp says (VoIPmonitor's calltable.cpp: is_fax_packet), so that its
// pages can be decoded, but a pause still holds: while paused they are
// cut after the header (VoIPmonitor stores them whole).
func (s *shard) storeRTP(c *callSpool, md *call.Media, paused bool) bool {
	p, n := md.Packet, md.HeaderLen
	if !paused && (s.cfg.SaveRTP == RTPFull || md.Fax) {
		if p.Fragment {
			s.stats.Fragments++
		}
		return s.storeMedia(c, p, p.Frame, len(p.Frame))
	}
	off := decode.PayloadOffset(p.Frame, p.Payload)
	if off < 0 {
		// Rebuilt from fragments: the frame holds only the last one and
		// the payload cannot be silenced in it; store nothing.
		s.stats.Fragments++
		return true
	}
	if paused && s.cfg.SaveRTP == RTPFull && s.silence(p, &md.RTP, off, n) {
		return s.storeMedia(c, p, s.scratch, len(p.Frame))
	}
	s.stats.HeaderOnly++
	return s.storeMedia(c, p, p.Frame[:off+n], len(p.Frame))
}

// silence copies the frame into the scratch buffer with the RTP payload
// replaced by the codec's silence and the UDP checksum fixed; false when
// the codec has no byte-wise silence.
func (s *shard) silence(p *decode.Packet, hdr *rtp.Header, off, n int) bool {
	if _, ok := rtp.SilenceByte(hdr.PayloadType); !ok {
		return false
	}
	s.scratch = append(s.scratch[:0], p.Frame...)
	end := off + len(p.Payload)
	start := off + n
	rtp.FillSilence(hdr.PayloadType, s.scratch[start:end-int(hdr.PaddingSize)])
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

func (s *shard) storeMedia(c *callSpool, p *decode.Packet, data []byte, origLen int) bool {
	if c.rtp == nil {
		c.rtp = newPcapFile(s.newFile(c, kindRTP, "pcap", 0))
	}
	return s.store(c.rtp, p, data, origLen)
}

// startAudio attaches a decoder to the call, writing the AUDIO file when
// saveaudio is on. The sink runs under the shard's lock too (Feed and
// Close are only called with it held).
func (s *shard) startAudio(c *callSpool) {
	cfg := audio.Config{Delay: s.cfg.AudioDelay, Log: s.log.With("callid", c.callID)}
	if s.format != audio.FormatNone {
		cfg.Sink = func(f *audio.Frame) { s.writeAudio(c, f) }
	}
	c.audio = audio.NewCall(cfg)
	c.mapDynamic(c.audio)
}

// writeAudio adds one frame to the call's AUDIO file: WAV samples, or the
// Ogg pages it completed. The file's rate is its first frame's (the
// call's native rate); later frames at another rate are resampled to it.
func (s *shard) writeAudio(c *callSpool, f *audio.Frame) {
	if c.wav == nil {
		rec, err := audio.NewRecorder(audio.RecorderConfig{Format: s.format, Mono: s.cfg.AudioMono, Serial: uint32(c.ref)})
		if err != nil {
			s.log.Warn("no audio file", "callid", c.callID, "err", err)
			return
		}
		c.rec = rec
		c.wav = s.newFile(c, kindAudio, s.format.Ext(), 0)
	}
	if c.rec == nil {
		return
	}
	out, err := c.rec.Frame(s.audioBuf[:0], f)
	s.audioBuf = out[:0]
	if err != nil {
		s.log.Warn("audio file given up", "callid", c.callID, "err", err)
		c.rec.Close()
		c.rec = nil
		return
	}
	if !s.appendAudio(c, out) {
		s.drop(&s.drops.audio)
	}
}

// appendAudio copies an AUDIO file's bytes into its buffer; false when the
// queue had no room (the first buffer of a new file always has).
func (s *shard) appendAudio(c *callSpool, b []byte) bool {
	if len(b) == 0 {
		return true
	}
	if !s.reserve(c.wav, len(b)) {
		return false
	}
	c.wav.buf = append(c.wav.buf, b...)
	c.wav.size += int64(len(b))
	return true
}

// Subscribe returns a live feed of a call's decoded audio (20 ms frames,
// both directions; silence while paused), starting the decoder if saveaudio
// is off. depth bounds the queue (0 = audio.DefaultDepth); a full queue
// drops its oldest frame and counts it. The channel closes when the call
// ends. An error wrapping call.ErrNoCall when the spool does not track
// ref. Subscribing is in memory: ctx only satisfies the frame sources'
// interface (the ARI tap's Subscribe does I/O).
func (s *Spool) Subscribe(_ context.Context, ref uint64, depth int) (*audio.Subscription, error) {
	sh := s.shardOf(ref)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.closed { // a Close whose ctx ended leaves calls tracked: no decoder for them
		return nil, fmt.Errorf("call 0x%x: %w", ref, ErrClosed)
	}
	c := sh.calls[ref]
	if c == nil {
		return nil, fmt.Errorf("spool: %w: 0x%x", call.ErrNoCall, ref)
	}
	if c.audio == nil {
		sh.startAudio(c)
	}
	return c.audio.Subscribe(depth)
}

// AudioStats returns the decoder figures of an active call.
func (s *Spool) AudioStats(ref uint64) (audio.Stats, bool) {
	sh := s.shardOf(ref)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	c := sh.calls[ref]
	if c == nil || c.audio == nil {
		return audio.Stats{}, false
	}
	return c.audio.Stats(), true
}

// CallEnded is the call table's OnCallEnd hook: it flushes the call's
// audio and queues the completion of its files (written out, renamed to
// their final names by the I/O goroutines) and forgets the call. I/O
// errors are logged by the I/O goroutines and counted in Stats.Errors.
func (s *Spool) CallEnded(cdr *call.CDR) {
	sh := s.shardOf(cdr.CallRef)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	c := sh.calls[cdr.CallRef]
	if c == nil || c.callID != cdr.CallID || sh.closed { // after Close as media (handleMedia)
		return
	}
	sh.finish(c)
}

// finish hands every file of c to its worker for completion.
func (s *shard) finish(c *callSpool) {
	delete(s.calls, c.ref)
	if c.audio != nil {
		c.audio.Close() // emits the last frames into the WAV
	}
	done := func(f *file) {
		if f == nil {
			return
		}
		if f.size == 0 { // never received a byte: not created
			if f.buf != nil {
				s.bufs.put(f.buf)
				f.buf = nil
			}
			return
		}
		s.handoff(f, true)
	}
	if c.sip != nil {
		done(c.sip.file)
	}
	if c.rtp != nil {
		done(c.rtp.file)
	}
	if c.wav != nil {
		if c.rec != nil {
			// The WAV header with its sizes, written over the first one; the
			// Ogg stream's last page.
			out, patch, err := c.rec.Finish(s.audioBuf[:0])
			if err != nil {
				s.log.Warn("audio file end", "callid", c.callID, "err", err)
			}
			if !s.appendAudio(c, out) {
				s.drop(&s.drops.audio)
			}
			s.audioBuf = out[:0]
			c.wav.patch = patch
		}
		done(c.wav)
	}
}

// Close completes every call still tracked (as if it ended now), waits for
// the I/O goroutines to write out everything queued and rename the files,
// stops them and returns the I/O errors of the files it completed. When
// ctx ends first, the I/O goroutines stop after their current write,
// leaving ".tmp" files. Packets after Close are not stored.
func (s *Spool) Close(ctx context.Context) error {
	s.life.Lock()
	if s.stopped {
		s.life.Unlock()
		return nil
	}
	ran := s.started
	s.stopped = true
	s.life.Unlock()
	var errs []error
	for _, sh := range s.shards {
		if err := sh.close(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	close(s.closing)
	if !ran {
		// Never run: write out here, in this goroutine.
		for _, w := range s.workers {
			w.run(ctx, s.closing)
		}
		if err := ctx.Err(); err != nil {
			errs = append(errs, fmt.Errorf("spool: close: writing stopped, %d bytes not written: %w", s.bufs.queued.Load(), err))
		}
	} else {
		s.awaitWorkers(ctx, &errs)
	}
	for _, w := range s.workers {
		errs = append(errs, w.closeErrs...)
		if w.moreErrs > 0 {
			errs = append(errs, fmt.Errorf("spool: close: %d more files failed", w.moreErrs))
		}
	}
	return errors.Join(errs...)
}

// close completes the shard's calls, in call reference order, and stores
// nothing more.
func (s *shard) close(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true // ops queued from here on are Close's
	refs := make([]uint64, 0, len(s.calls))
	for ref := range s.calls {
		refs = append(refs, ref)
	}
	slices.Sort(refs)
	for _, ref := range refs {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("spool: close: %d calls left: %w", len(s.calls), err)
		}
		s.finish(s.calls[ref])
	}
	return nil
}

// awaitWorkers waits for Run's workers to write out what Close queued
// (stopping them when ctx ends first), then stops the cleaner.
func (s *Spool) awaitWorkers(ctx context.Context, errs *[]error) {
	aborted := false
	for _, w := range s.workers {
		select {
		case <-w.done:
		case <-ctx.Done():
			if !aborted {
				aborted = true
				s.cancel()
				*errs = append(*errs, fmt.Errorf("spool: close: writing stopped, %d bytes not written: %w", s.bufs.queued.Load(), ctx.Err()))
			}
			<-w.done
		}
	}
	s.cancel()
	if s.pool != nil {
		<-s.pool.done
	}
}

// Stats returns the counters so far.
func (s *Spool) Stats() Stats {
	var st Stats
	for _, sh := range s.shards {
		sh.mu.Lock()
		st.addPackets(&sh.stats)
		st.Calls += len(sh.calls)
		sh.mu.Unlock()
	}
	d := &s.drops
	st.DroppedSIP, st.DroppedRTP, st.DroppedRTCP = d.sip.Load(), d.rtp.Load(), d.rtcp.Load()
	st.DroppedOther, st.DroppedAudio = d.other.Load(), d.audio.Load()
	st.Queued = s.bufs.queued.Load()
	st.PeakQueued = s.bufs.peak.Load()
	st.Files = s.io.files.Load()
	st.Bytes = s.io.written.Load()
	st.BytesRaw = s.io.raw.Load()
	st.OpenFiles = int(s.io.open.Load())
	st.PeakOpenFiles = int(s.io.peak.Load())
	st.Reopens = s.io.reopens.Load()
	st.Evictions = s.io.evictions.Load()
	st.Errors = s.io.errors.Load()
	s.pool.poolStats(&st)
	return st
}

// addPackets adds a shard's packet counters to st.
func (st *Stats) addPackets(o *Stats) {
	st.SIPPackets += o.SIPPackets
	st.RTPPackets += o.RTPPackets
	st.RTCPPackets += o.RTCPPackets
	st.OtherPackets += o.OtherPackets
	st.PausedPackets += o.PausedPackets
	st.HeaderOnly += o.HeaderOnly
	st.Fragments += o.Fragments
	st.LinkMismatch += o.LinkMismatch
	st.UnknownCall += o.UnknownCall
}
