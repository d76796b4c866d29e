package webui

import (
	"github.com/prometheus/client_golang/prometheus"

	"pbx-agent/internal/promfunc"
)

// Register puts the handler's series (pbx_web_*) on reg, read at scrape
// time.
func (h *Handler) Register(reg prometheus.Registerer) error {
	return promfunc.Register(reg,
		promfunc.Counter("pbx_web_login_keys_evicted_total", "Failed-login keys (user@address, address) whose window had ended forgotten to make room for a new key in the full table (100,000 keys).", h.throttle.evicted.Load),
		promfunc.Counter("pbx_web_login_keys_pooled_total", "Failed logins of new keys counted on one shared entry because every key in the full failed-login table was within its window.", h.throttle.pooled.Load),
	)
}
