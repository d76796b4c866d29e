package call

import (
	"github.com/prometheus/client_golang/prometheus"

	"pbx-agent/internal/promfunc"
)

// Register puts the call table's series (pbx_calls_*, pbx_sip_*,
// pbx_registers_*) on reg, read at scrape time.
func (t *Table) Register(reg prometheus.Registerer) error {
	c := promfunc.CounterOf(t.Stats)
	return promfunc.Register(reg,
		c("pbx_calls_started_total", "Calls seen starting (INVITE).", func(st *Stats) uint64 { return st.CallsStarted }),
		c("pbx_calls_ended_total", "Calls finished and recorded.", func(st *Stats) uint64 { return st.CallsEnded }),
		c("pbx_sip_retransmissions_total", "SIP retransmissions recognised (not counted twice).", func(st *Stats) uint64 { return st.Retransmissions }),
		c("pbx_calls_refused_total", "INVITEs ignored because the call limit was reached (INVITE flood).", func(st *Stats) uint64 { return st.CallsRefused }),
		c("pbx_sip_orphans_total", "In-dialog SIP messages of calls never seen starting.", func(st *Stats) uint64 { return st.Orphans }),
		c("pbx_registers_total", "REGISTER transactions seen.", func(st *Stats) uint64 { return st.Registers }),
		c("pbx_registers_refused_total", "New REGISTER bindings or attempts ignored because their limit was reached.", func(st *Stats) uint64 { return st.RegistersRefused }),
		c("pbx_registers_attempts_evicted_total", "REGISTER attempts closed early because their binding had 16 open (Call-IDs rotated faster than they time out).", func(st *Stats) uint64 { return st.RegisterAttemptsEvicted }),
		c("pbx_registers_unanswered_total", "REGISTER attempts closed with no answer (written as register_failed).", func(st *Stats) uint64 { return st.RegistersUnanswered }),
		c("pbx_calls_media_evicted_total", "Media addresses a call forgot for newer ones past its limit of 64 (re-INVITE storm).", func(st *Stats) uint64 { return st.MediaEvicted }),
		c("pbx_calls_cdr_entries_dropped_total", "Responses, SIP INFO digits, hold times or INVITE transactions (response times) a CDR did not keep past its lists' bounds.", func(st *Stats) uint64 { return st.EntriesDropped }),
		promfunc.Gauge("pbx_calls_active", "Calls in progress.", func() float64 { return float64(t.ActiveCount()) }),
	)
}
