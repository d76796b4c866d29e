package manager

import (
	"context"
	"io"
	"strconv"
	"strings"
	"time"
)

// snifferStat: one-line JSON object in VoIPmonitor's layout (`"key": value`
// pairs joined by ","), or key=value lines with `plain`.
func (s *Server) snifferStat(_ context.Context, w io.Writer, req *Request) error {
	var st Stats
	if s.cfg.Stats != nil {
		st = s.cfg.Stats()
	}
	lastWrite := ""
	if !st.StoringCdrLastWriteAt.IsZero() {
		lastWrite = st.StoringCdrLastWriteAt.In(s.cfg.Location).Format(time.DateTime)
	}
	type kv struct {
		k   string
		v   string
		raw bool // v is a JSON literal, not a string
	}
	pairs := []kv{
		{"version", s.cfg.Version, false},
		{"build", s.cfg.Build, false},
		{"rrd_version", "0", false},
		{"initializing", strconv.FormatBool(!s.ready.Load()), true},
		{"storingCdrLastWriteAt", lastWrite, false},
		{"pbStatString", st.PacketBufferStat, false},
		{"pbCountPacketDrop", strconv.FormatUint(st.PacketsDropped, 10), false},
		{"uptime", strconv.FormatInt(int64(time.Since(s.start)/time.Second), 10), false},
		{"memory_is_full", strconv.Itoa(boolInt(st.MemoryIsFull)), false},
		{"count_live_sniffers", "0", false},
		{"upgrade_by_git", "0", false},
		{"use_new_config", "1", false},
		{"terminating_error", st.TerminatingError, false},
		{"disk_io", "null", true},
	}
	if strings.TrimSpace(req.Args) == "plain" {
		var b strings.Builder
		for _, p := range pairs {
			b.WriteString(p.k)
			b.WriteByte('=')
			b.WriteString(p.v)
			b.WriteByte('\n')
		}
		_, err := io.WriteString(w, b.String())
		return err
	}
	b := []byte{'{'}
	for i, p := range pairs {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, p.k)
		b = append(b, ": "...)
		if p.raw {
			b = append(b, p.v...)
		} else {
			b = appendJSONString(b, p.v)
		}
	}
	b = append(b, '}')
	_, err := w.Write(b)
	return err
}
