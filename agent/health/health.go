// Package health serves the daemon's /healthz (alive: the process answers)
// and /readyz (capture running, database reachable or queueing, AMI state).
// Both answer JSON carrying "agent":"pbx-agent", which is how `pbx-agent
// doctor` recognises its own agent on a port that is taken.
package health

import (
	"context"
	"encoding/json"
	"net/http"
	"time"
)

// AgentName is the "agent" field of both answers.
const AgentName = "pbx-agent"

// States reported by /readyz.
const (
	CaptureStarting = "starting"
	CaptureRunning  = "running"
	CaptureReplayed = "replay finished" // -r FILE read; the APIs keep serving
	CaptureFrontEnd = "front end"       // sniffer = no
	CaptureStopped  = "stopped"

	DBOff       = "off"
	DBReachable = "reachable"
	DBQueueing  = "queueing" // unreachable: CDRs wait in the on-disk queue

	AMIOff        = "off"
	AMIConnected  = "connected"
	AMIConnecting = "connecting"
	AMIRecorded   = "recorded session" // -r with -ami, the demo
)

// Probe tells the handlers the daemon's state. Nil funcs report "off".
type Probe struct {
	Version  string
	Started  time.Time
	Capture  func() string
	Database func(ctx context.Context) string // called per /readyz request, with a short timeout
	AMI      func() string
}

// Live is /healthz's answer.
type Live struct {
	Agent   string  `json:"agent"`
	Version string  `json:"version"`
	Status  string  `json:"status"`
	Uptime  float64 `json:"uptime_s"`
}

// Ready is /readyz's answer.
type Ready struct {
	Agent    string `json:"agent"`
	Version  string `json:"version"`
	Ready    bool   `json:"ready"`
	Capture  string `json:"capture"`
	Database string `json:"database"`
	AMI      string `json:"ami"`
}

// Mux is what the handlers are registered on (webui.Handler, http.ServeMux).
type Mux interface {
	Handle(pattern string, h http.Handler)
}

// Register adds GET /healthz and GET /readyz.
func (p Probe) Register(m Mux) {
	m.Handle("GET /healthz", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, Live{Agent: AgentName, Version: p.Version, Status: "ok", Uptime: time.Since(p.Started).Round(time.Second).Seconds()})
	}))
	m.Handle("GET /readyz", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rd := p.Ready(r.Context())
		code := http.StatusOK
		if !rd.Ready {
			code = http.StatusServiceUnavailable
		}
		writeJSON(w, code, rd)
	}))
}

// Ready evaluates readiness: capture running (or its file replayed, or a
// front end without capture) and the database reachable or queueing. AMI
// is reported but does not decide: calls are captured without it.
func (p Probe) Ready(ctx context.Context) Ready {
	rd := Ready{Agent: AgentName, Version: p.Version, Capture: CaptureRunning, Database: DBOff, AMI: AMIOff}
	if p.Capture != nil {
		rd.Capture = p.Capture()
	}
	if p.Database != nil {
		dctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		rd.Database = p.Database(dctx)
		cancel()
	}
	if p.AMI != nil {
		rd.AMI = p.AMI()
	}
	switch rd.Capture {
	case CaptureRunning, CaptureReplayed, CaptureFrontEnd:
		rd.Ready = rd.Database == DBOff || rd.Database == DBReachable || rd.Database == DBQueueing
	}
	return rd
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
