package doctor

import "time"

// checkClock checks the wall clock is plausible and NTP-synchronised: CDR
// times and the SIP/AMI join depend on it.
func checkClock(r *Report, env *Env) {
	now := env.Now()
	if now.Year() < 2024 {
		r.add("clock", StatusFail, "set the clock (`timedatectl set-ntp true`)", "clock reads %s", now.UTC().Format(time.RFC3339))
		return
	}
	synced, err := env.ClockSynced()
	switch {
	case err != nil:
		r.add("clock", StatusInfo, "", "%s (sync state unknown: %v)", now.UTC().Format(time.RFC3339), err)
	case !synced:
		r.add("clock", StatusWarn, "enable time sync: `timedatectl set-ntp true` (systemd-timesyncd) or install chrony", "%s, not NTP-synchronised: CDR times may drift from Asterisk's", now.UTC().Format(time.RFC3339))
	default:
		r.add("clock", StatusOK, "", "%s, NTP-synchronised", now.UTC().Format(time.RFC3339))
	}
}
