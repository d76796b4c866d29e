package player

import (
	"github.com/prometheus/client_golang/prometheus"

	"pbx-agent/internal/promfunc"
)

// Register puts the player's series (pbx_player_*) on reg, read at scrape
// time from Stats.
func (h *Handler) Register(reg prometheus.Registerer) error {
	c := promfunc.CounterOf(h.Stats)
	g := promfunc.GaugeOf(h.Stats)
	return promfunc.Register(reg,
		g("pbx_player_listeners", "Browser listeners (websockets) open now.", func(st *Stats) float64 { return float64(st.Listeners) }),
		c("pbx_player_listeners_total", "Browser listeners accepted.", func(st *Stats) uint64 { return st.ListenersSeen }),
		c("pbx_player_frames_total", "Audio frames sent to browsers.", func(st *Stats) uint64 { return st.Frames }),
		c("pbx_player_dropped_frames_total", "Frames slow listeners lost (queue full).", func(st *Stats) uint64 { return st.Dropped }),
		c("pbx_player_refused_total", "Websocket upgrades refused (auth, rights, origin, bad request).", func(st *Stats) uint64 { return st.Refused }),
		g("pbx_player_remote_streams", "Streams open to other sensors now.", func(st *Stats) float64 { return float64(st.RemoteStreams) }),
		c("pbx_player_remote_streams_total", "Streams opened to other sensors.", func(st *Stats) uint64 { return st.RemoteTotal }),
	)
}
