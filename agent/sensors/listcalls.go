package sensors

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"pbx-agent/sniffer/call"
)

// listcalls columns read into a call.Summary.
var listcallsFields = []string{"callreference", "callid", "calldate_num", "lastpackettime", "duration",
	"connect_duration", "caller", "called", "callername", "callerdomain", "calleddomain", "calleragent",
	"calledagent", "callerip", "calledip", "lastSIPresponseNum", "id_sensor"}

// ParseListCalls decodes a listcalls reply (spec §1.4): a JSON array whose
// element 0 is the column names, an optional summary element (an array of
// objects), then one array of values per call. Columns are found by name,
// so extra or reordered columns (custom headers) are fine. sensor fills
// call.Summary.Sensor when the reply has no id_sensor (or -1).
func ParseListCalls(b []byte, sensor int) ([]call.Summary, error) {
	var top []any
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	if err := d.Decode(&top); err != nil {
		return nil, fmt.Errorf("%w: listcalls: %w", ErrBadReply, err)
	}
	if len(top) == 0 {
		return nil, fmt.Errorf("%w: listcalls: empty array", ErrBadReply)
	}
	header, ok := top[0].([]any)
	if !ok {
		return nil, fmt.Errorf("%w: listcalls header is not an array", ErrBadReply)
	}
	idx := make(map[string]int, len(header))
	for i, h := range header {
		name, ok := h.(string)
		if !ok {
			return nil, fmt.Errorf("%w: listcalls header %d is not a string", ErrBadReply, i)
		}
		idx[name] = i
	}
	if _, ok := idx["callreference"]; !ok {
		return nil, fmt.Errorf("%w: listcalls header has no callreference", ErrBadReply)
	}
	out := make([]call.Summary, 0, len(top)-1)
	for n, el := range top[1:] {
		row, ok := el.([]any)
		if !ok {
			return nil, fmt.Errorf("%w: listcalls row %d is not an array", ErrBadReply, n+1)
		}
		if len(row) > 0 {
			if _, summary := row[0].(map[string]any); summary {
				continue
			}
		}
		c, err := callFromRow(row, idx, sensor)
		if err != nil {
			return nil, fmt.Errorf("%w: listcalls row %d: %w", ErrBadReply, n+1, err)
		}
		out = append(out, c)
	}
	return out, nil
}

func callFromRow(row []any, idx map[string]int, sensor int) (call.Summary, error) {
	get := func(name string) any {
		if i, ok := idx[name]; ok && i < len(row) {
			return row[i]
		}
		return nil
	}
	str := func(name string) string {
		s, _ := get(name).(string)
		return s
	}
	num := func(name string) int64 {
		switch v := get(name).(type) {
		case json.Number:
			if n, err := v.Int64(); err == nil {
				return n
			}
			if f, err := v.Float64(); err == nil {
				return int64(f)
			}
		case string:
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
		return 0
	}
	var c call.Summary
	refS := str("callreference")
	ref, err := strconv.ParseUint(strings.TrimPrefix(strings.TrimPrefix(refS, "0x"), "0X"), 16, 64)
	if err != nil || refS == "" {
		return c, fmt.Errorf("callreference %q", refS)
	}
	c.Ref = ref
	c.Sensor = sensor
	if v := get("id_sensor"); v != nil {
		if id := num("id_sensor"); id >= 0 {
			c.Sensor = int(id)
		}
	}
	c.CallID = str("callid")
	if t := num("calldate_num"); t > 0 {
		c.CallDate = time.Unix(t, 0)
	}
	if t := num("lastpackettime"); t > 0 {
		c.LastPacket = time.Unix(t, 0)
	}
	c.Duration = time.Duration(max(0, num("duration"))) * time.Second
	c.ConnectDuration = time.Duration(max(0, num("connect_duration"))) * time.Second
	c.LastSIPResponseNum = int(num("lastSIPresponseNum"))
	// listcalls writes 0 for "not connected": a 2xx final answer or a
	// positive connect time says it was.
	c.Connected = c.ConnectDuration > 0 || (c.LastSIPResponseNum >= 200 && c.LastSIPResponseNum < 300)
	c.Caller, c.Called, c.CallerName = str("caller"), str("called"), str("callername")
	c.CallerDomain, c.CalledDomain = str("callerdomain"), str("calleddomain")
	c.CallerUA, c.CalledUA = str("calleragent"), str("calledagent")
	c.CallerIP, c.CalledIP = ipValue(get("callerip")), ipValue(get("calledip"))
	return c, nil
}

// ipValue reads listcalls' address encoding: IPv4 as an unsigned integer,
// IPv6 as a string.
func ipValue(v any) netip.Addr {
	switch v := v.(type) {
	case json.Number:
		n, err := strconv.ParseUint(v.String(), 10, 32)
		if err != nil {
			return netip.Addr{}
		}
		return netip.AddrFrom4([4]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)})
	case string:
		a, _ := netip.ParseAddr(v)
		return a
	}
	return netip.Addr{}
}
