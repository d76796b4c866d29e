package player

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"time"

	"pbx-agent/sniffer/call"
	"pbx-agent/sniffer/rtp"
	"pbx-agent/webui"
)

// callRow is one active call on the dashboard.
type callRow struct {
	CallRef   string     `json:"callref"`
	SensorID  int        `json:"sensor_id"`
	CallID    string     `json:"callid"`
	Caller    string     `json:"caller"`
	Called    string     `json:"called"`
	CallDate  string     `json:"calldate"`
	Duration  int        `json:"duration"`
	Connected bool       `json:"connected"`
	Codec     string     `json:"codec"`
	MOS       [2]float64 `json:"mos"`    // caller→callee, callee→caller (adaptive jitter buffer MOS)
	Jitter    [2]float64 `json:"jitter"` // ms, mean
	Loss      [2]float64 `json:"loss"`   // percent
	Channels  []string   `json:"channels"`
	Paused    bool       `json:"paused"`
}

type callsReply struct {
	SensorID  int       `json:"sensor_id"`
	User      string    `json:"user"`
	CanListen bool      `json:"can_listen"`
	CanPause  bool      `json:"can_pause"`
	Now       string    `json:"now"`
	Calls     []callRow `json:"calls"`
}

// callsJSON is GET /api/chunkplayer/calls.json: this sensor's active
// calls for the dashboard (right can_activecalls or can_listen_active_call).
func (h *Handler) callsJSON(w http.ResponseWriter, r *http.Request) {
	u, ok := h.authorize(w, r, 0)
	if !ok {
		return
	}
	if !u.Rights.Has(webui.CanActiveCalls) && !u.Rights.Has(webui.CanListenActiveCall) {
		httpError(w, http.StatusForbidden, fmt.Sprintf("user %s lacks can_activecalls", u.Name))
		return
	}
	now := time.Now()
	if h.o.Now != nil {
		now = h.o.Now()
	}
	rep := callsReply{SensorID: h.o.SensorID, User: u.Name, CanListen: u.Rights.Has(webui.CanListenActiveCall),
		CanPause: u.Rights.Has(webui.CanHandleActiveCall), Now: now.UTC().Format(time.RFC3339), Calls: []callRow{}}
	if h.o.Calls != nil && u.SeesSensor(h.o.SensorID) {
		calls := h.o.Calls.ActiveCalls()
		sort.Slice(calls, func(i, j int) bool { return calls[i].CallDate.After(calls[j].CallDate) })
		for i := range calls {
			rep.Calls = append(rep.Calls, h.row(&calls[i]))
		}
	}
	b, err := json.Marshal(rep)
	if err != nil {
		httpError(w, http.StatusInternalServerError, "internal error")
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(b)
}

func (h *Handler) row(c *call.CDR) callRow {
	r := callRow{
		CallRef: fmt.Sprintf("0x%x", c.CallRef), SensorID: h.o.SensorID, CallID: c.CallID,
		Caller: c.Caller, Called: c.Called, CallDate: c.CallDate.UTC().Format("2006-01-02 15:04:05"),
		Duration: int(c.Duration() / time.Second), Connected: !c.ConnectTime.IsZero(),
		Paused: isPaused(c), Channels: []string{},
	}
	r.Codec, _ = codecs(c)
	for dir := range 2 {
		if s := stream(c, dir == 0); s != nil {
			r.MOS[dir] = round1(s.MOSAdapt)
			r.Jitter[dir] = round1(s.AvgJitter)
			if s.Received+s.Lost > 0 {
				r.Loss[dir] = round1(float64(s.Lost) * 100 / float64(s.Received+s.Lost))
			}
		}
	}
	if h.o.Channels != nil {
		if ch := h.o.Channels(c); ch != nil {
			r.Channels = ch
		}
	}
	return r
}

func round1(v float64) float64 { return float64(int64(v*10+0.5)) / 10 }

// stream returns the call's main stream in one direction (most packets).
func stream(c *call.CDR, caller bool) *rtp.Summary {
	a, b := c.StreamAB()
	i := b
	if caller {
		i = a
	}
	if i < 0 {
		return nil
	}
	return &c.Streams[i]
}

// codecs names the caller's and callee's codecs as VoIPmonitor's GUI does
// ("G.711u", "G.722", "OPUS48").
func codecs(c *call.CDR) (string, string) {
	var a, b string
	if s := stream(c, true); s != nil {
		a = rtp.VMCodecName(s.CodecID())
	}
	if s := stream(c, false); s != nil {
		b = rtp.VMCodecName(s.CodecID())
	}
	if a == "" {
		a = b
	}
	return a, b
}

// isPaused: recording (and so listening) paused now.
func isPaused(c *call.CDR) bool {
	n := len(c.Paused)
	return n > 0 && c.Paused[n-1].End.IsZero()
}
