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
			s := calls[i].Summary(h.o.SensorID, now)
			rep.Calls = append(rep.Calls, h.row(&s, h.channels(&calls[i])))
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

// row renders one call's summary; channels are its Asterisk channels.
func (h *Handler) row(s *call.Summary, channels []string) callRow {
	r := callRow{
		CallRef: fmt.Sprintf("0x%x", s.Ref), SensorID: s.Sensor, CallID: s.CallID,
		Caller: s.Caller, Called: s.Called, CallDate: s.CallDate.In(h.loc()).Format("2006-01-02 15:04:05"),
		Duration: int(s.LastPacket.Sub(s.CallDate) / time.Second), Connected: s.Connected,
		Paused: s.Paused, Channels: channels, Codec: codecName(s),
	}
	for dir := range s.RTP {
		if f := &s.RTP[dir]; f.Present {
			r.MOS[dir] = round1(f.MOSAdapt)
			r.Jitter[dir] = round1(f.AvgJitter)
			r.Loss[dir] = round1(f.LossPercent())
		}
	}
	return r
}

// channels are the call's Asterisk channels, never nil.
func (h *Handler) channels(c *call.CDR) []string {
	if h.o.Channels != nil {
		if ch := h.o.Channels(c); ch != nil {
			return ch
		}
	}
	return []string{}
}

func round1(v float64) float64 { return float64(int64(v*10+0.5)) / 10 }

// codecName names the caller's codec (else the callee's) as VoIPmonitor's
// GUI does ("G.711u", "G.722", "OPUS48").
func codecName(s *call.Summary) string {
	for _, f := range s.RTP {
		if f.Present {
			if name := rtp.VMCodecName(f.CodecID); name != "" {
				return name
			}
		}
	}
	return ""
}

// loc is Options.Location, or UTC.
func (h *Handler) loc() *time.Location {
	if h.o.Location == nil {
		return time.UTC
	}
	return h.o.Location
}
