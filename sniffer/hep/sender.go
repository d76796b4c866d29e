package hep

import (
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"pbx-agent/sniffer/rtp"
)

// SenderConfig configures HEP output to a collector (HOMER, heplify-server,
// another pbx-agent): hep_destination and its companions.
type SenderConfig struct {
	Addr      string // host:port
	Network   string // "udp" (default) or "tcp"
	CaptureID uint32
	Password  string
	NodeName  string
	// Queue bounds the packets waiting to be sent (default 4096); when it
	// is full, Send drops and counts.
	Queue  int
	Logger *slog.Logger
}

// Sender encodes packets on the caller's goroutine into pooled buffers and
// sends them from its own: Send never blocks the packet path.
type Sender struct {
	cfg  SenderConfig
	log  *slog.Logger
	q    chan *[]byte
	free chan *[]byte // spent buffers for reuse (a sync.Pool would lose them at every GC)
	pass []byte
	node []byte

	queued, sent, dropped, failed, encode atomic.Uint64
}

// NewSender checks cfg; Run connects and sends.
func NewSender(cfg SenderConfig) (*Sender, error) {
	if cfg.Addr == "" {
		return nil, ErrNoDestination
	}
	if _, _, err := net.SplitHostPort(cfg.Addr); err != nil {
		return nil, err
	}
	switch cfg.Network {
	case "":
		cfg.Network = "udp"
	case "udp", "tcp":
	default:
		return nil, ErrNetwork
	}
	if cfg.Queue <= 0 {
		cfg.Queue = 4096
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Sender{cfg: cfg, log: cfg.Logger.With("component", "hep-output", "destination", cfg.Addr),
		q: make(chan *[]byte, cfg.Queue), free: make(chan *[]byte, cfg.Queue), pass: []byte(cfg.Password), node: []byte(cfg.NodeName)}
	return s, nil
}

// Send encodes p (its capture id, password and node name are set from the
// configuration) and queues it; false when it was dropped (queue full or
// not encodable). p's slices may be reused once Send returns.
func (s *Sender) Send(p *Packet) bool {
	p.CaptureID, p.AuthKey, p.NodeName = s.cfg.CaptureID, s.pass, s.node
	bp := s.get()
	b, err := AppendMarshal((*bp)[:0], p)
	if err != nil {
		s.encode.Add(1)
		s.put(bp)
		return false
	}
	*bp = b
	select {
	case s.q <- bp:
		s.queued.Add(1)
		return true
	default:
		s.dropped.Add(1)
		s.put(bp)
		return false
	}
}

// get returns a spent buffer, or a new one (at most Queue + in flight ever
// exist: spent ones come back through put).
func (s *Sender) get() *[]byte {
	select {
	case bp := <-s.free:
		return bp
	default:
		b := make([]byte, 0, 2048)
		return &b
	}
}

// put keeps a spent buffer for reuse; outsized ones (a jumbo message) are
// left to the garbage collector.
func (s *Sender) put(bp *[]byte) {
	if cap(*bp) > 16<<10 {
		return
	}
	select {
	case s.free <- bp:
	default:
	}
}

// Run sends queued packets until ctx ends, (re)connecting as needed; what
// cannot be written is counted as failed and dropped.
func (s *Sender) Run(ctx context.Context) error {
	var conn net.Conn
	defer func() {
		if conn != nil {
			conn.Close()
		}
	}()
	backoff := time.Duration(0)
	var nextDial time.Time
	for {
		var bp *[]byte
		select {
		case <-ctx.Done():
			s.flush(conn)
			return ctx.Err()
		case bp = <-s.q:
		}
		if conn == nil && time.Now().After(nextDial) {
			// Not cancelled with ctx: a sender stopping before it sent
			// anything (a replay ends in milliseconds) still connects for
			// what is queued; with ctx the dial failed, and the packets
			// taken before flush were counted failed.
			d := net.Dialer{Timeout: 2 * time.Second}
			c, err := d.DialContext(context.WithoutCancel(ctx), s.cfg.Network, s.cfg.Addr)
			if err != nil {
				backoff = min(max(2*backoff, 100*time.Millisecond), 10*time.Second)
				nextDial = time.Now().Add(backoff)
				s.log.Warn("HEP destination unreachable; dropping until it is", "err", err, "retry_in", backoff)
			} else {
				conn, backoff = c, 0
				s.log.Info("HEP output connected", "network", s.cfg.Network)
			}
		}
		if conn == nil {
			s.failed.Add(1)
			s.put(bp)
			continue
		}
		_ = conn.SetWriteDeadline(time.Now().Add(2 * time.Second))
		if _, err := conn.Write(*bp); err != nil {
			s.failed.Add(1)
			if s.cfg.Network == "tcp" {
				s.log.Warn("HEP output write failed; reconnecting", "err", err)
				conn.Close()
				conn = nil
			}
			// UDP: a refused datagram (ICMP) is a lost packet, not a broken socket
		} else {
			s.sent.Add(1)
		}
		s.put(bp)
	}
}

// flushTime bounds how long a stopping sender keeps writing what is queued.
const flushTime = 2 * time.Second

// flush writes what is still queued at shutdown (calls flushed at the end
// of a capture), within flushTime; the rest is counted as failed.
func (s *Sender) flush(conn net.Conn) {
	if conn == nil {
		d := net.Dialer{Timeout: time.Second}
		c, err := d.Dial(s.cfg.Network, s.cfg.Addr)
		if err != nil {
			return
		}
		defer c.Close()
		conn = c
	}
	deadline := time.Now().Add(flushTime)
	_ = conn.SetWriteDeadline(deadline)
	for {
		select {
		case bp := <-s.q:
			if _, err := conn.Write(*bp); err != nil || time.Now().After(deadline) {
				s.failed.Add(1)
			} else {
				s.sent.Add(1)
			}
			s.put(bp)
		default:
			return
		}
	}
}

// SenderStats counts the output's work.
type SenderStats struct {
	Queued, Sent, Dropped, Failed, EncodeErrors uint64
	QueueLen                                    int
}

// Stats returns the sender's counters.
func (s *Sender) Stats() SenderStats {
	return SenderStats{Queued: s.queued.Load(), Sent: s.sent.Load(), Dropped: s.dropped.Load(), Failed: s.failed.Load(),
		EncodeErrors: s.encode.Load(), QueueLen: len(s.q)}
}

// Register exposes the output's counters on reg.
func (s *Sender) Register(reg prometheus.Registerer) error {
	if err := registerCounters(reg, []counterFunc{
		{"pbx_hep_output_queued_total", "HEP packets queued for the collector.", s.queued.Load},
		{"pbx_hep_output_sent_total", "HEP packets sent to the collector.", s.sent.Load},
		{"pbx_hep_output_dropped_total", "HEP packets dropped because the send queue was full.", s.dropped.Load},
		{"pbx_hep_output_failed_total", "HEP packets lost to an unreachable collector or a failed write.", s.failed.Load},
		{"pbx_hep_output_encode_errors_total", "Packets that could not be encoded as HEP3 (too large, bad addresses).", s.encode.Load},
	}); err != nil {
		return err
	}
	return reg.Register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "pbx_hep_output_queue_length", Help: "HEP packets waiting to be sent."},
		func() float64 { return float64(len(s.q)) }))
}

// QoSReport is the per-stream quality report sent at the end of a call
// (HEP protocol type 34, the JSON "RTP agent" report HOMER shows beside
// the call's SIP and RTCP), keyed by the Call-ID.
type QoSReport struct {
	CorrelationID string  `json:"CORRELATION_ID"`
	CallID        string  `json:"RTP_SIP_CALL_ID"`
	ReportName    string  `json:"REPORT_NAME"`
	SrcIP         string  `json:"SRC_IP"`
	SrcPort       uint16  `json:"SRC_PORT"`
	DstIP         string  `json:"DST_IP"`
	DstPort       uint16  `json:"DST_PORT"`
	SSRC          uint32  `json:"SSRC"`
	CodecPT       int     `json:"CODEC_PT"`
	CodecName     string  `json:"CODEC_NAME"`
	Clock         int     `json:"CLOCK"`
	TotalPackets  int     `json:"TOTAL_PK"`
	Expected      int     `json:"EXPECTED_PK"`
	PacketLoss    int     `json:"PACKET_LOSS"`
	OutOfOrder    int     `json:"OUT_ORDER"`
	MeanJitter    float64 `json:"MEAN_JITTER"`
	MaxJitter     float64 `json:"MAX_JITTER"`
	MaxDelta      float64 `json:"MAX_DELTA"`
	MOS           float64 `json:"MOS"`
	MinMOS        float64 `json:"MIN_MOS"`
	Start         int64   `json:"START_TS"` // µs since the epoch
	End           int64   `json:"END_TS"`
	Direction     string  `json:"DIR"` // "caller" (A → B) or "called"
}

// NewQoSReport builds the report of one stream of a call.
func NewQoSReport(callID string, s *rtp.Summary) QoSReport {
	dir := "called"
	if s.Caller {
		dir = "caller"
	}
	return QoSReport{CorrelationID: callID, CallID: callID, ReportName: "pbx-agent stream", SrcIP: s.Src.Addr().Unmap().String(),
		SrcPort: s.Src.Port(), DstIP: s.Dst.Addr().Unmap().String(), DstPort: s.Dst.Port(), SSRC: s.SSRC, CodecPT: s.Payload,
		CodecName: s.Codec, Clock: s.ClockRate, TotalPackets: s.Received, Expected: s.Expected, PacketLoss: s.Lost,
		OutOfOrder: s.Reordered, MeanJitter: s.AvgJitter, MaxJitter: s.MaxJitter, MaxDelta: s.MaxDelta, MOS: s.MOSAdapt,
		MinMOS: s.MOSAdaptMin, Start: s.FirstTime.UnixMicro(), End: s.LastTime.UnixMicro(), Direction: dir}
}

// JSON encodes the report (per call, not per packet: it may allocate).
func (r *QoSReport) JSON() []byte {
	b, _ := json.Marshal(r)
	return b
}

// Drain empties the queue without sending (benchmarks, shutdown).
func (s *Sender) Drain() {
	for {
		select {
		case bp := <-s.q:
			s.put(bp)
		default:
			return
		}
	}
}
