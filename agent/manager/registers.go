package manager

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"pbx-agent/sniffer/call"
)

// registerColumns is listregisters' header (spec §1.4).
var registerHeader = []string{
	"ID", "id_sensor", "fname", "calldate", "sipcallerip", "sipcalledip",
	"sipcallerip_encaps", "sipcalledip_encaps", "sipcallerip_encaps_prot", "sipcalledip_encaps_prot",
	"sipcallerport", "sipcalledport", "from_num", "from_name", "from_domain", "to_num", "to_domain",
	"contact_num", "contact_domain", "digestusername", "digestrealm", "expires", "expires_at",
	"state", "ua", "rrd_avg", "spool_index", "is_sipalg_detected", "vlan",
	"sipcallerip_country_code", "sipcalledip_country_code",
}

func (s *Server) registers() []call.Register {
	if s.cfg.Calls == nil {
		return nil
	}
	return s.cfg.Calls.Registers()
}

func (s *Server) totalRegisters(_ context.Context, w io.Writer, _ *Request) error {
	_, err := io.WriteString(w, strconv.Itoa(len(s.registers())))
	return err
}

// listRegisters: [[header],[{"total":N}],[row],…], rows sorted by calldate desc.
func (s *Server) listRegisters(_ context.Context, w io.Writer, req *Request) error {
	p, err := parseListParams(req.Args)
	if err != nil {
		_, err = fmt.Fprintf(w, "error: %v\n", err)
		return err
	}
	all := s.registers()
	regs := make([]*call.Register, 0, len(all))
	for i := range all {
		r := &all[i]
		if len(p.states) > 0 && !slices.Contains(p.states, strings.ToLower(r.State.Name())) {
			continue
		}
		if !matchRegister(r, p.filters) {
			continue
		}
		regs = append(regs, r)
	}
	slices.SortStableFunc(regs, func(a, b *call.Register) int {
		c := a.Time.Compare(b.Time)
		if p.sortAsc {
			return c
		}
		return -c
	})
	total := len(regs)
	if p.limit >= 0 && p.limit < len(regs) {
		regs = regs[:p.limit]
	}
	b := make([]byte, 0, 4096)
	b = append(b, "[["...)
	for i, h := range registerHeader {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, h)
	}
	b = append(b, `],[{"total":`...)
	b = strconv.AppendInt(b, int64(total), 10)
	b = append(b, "}]"...)
	return writeRows(w, p.zip, b, len(regs), func(b []byte, i int) []byte { return s.appendRegisterRow(b, i+1, regs[i]) })
}

func matchRegister(r *call.Register, filters []string) bool {
	for _, f := range filters {
		hit := false
		for _, v := range [...]string{r.FromNum, r.FromDomain, r.ToNum, r.ToDomain, r.ContactNum, r.ContactDomain, r.DigestUsername, r.UA, ipText(r.CallerIP), ipText(r.CalledIP)} {
			if strings.Contains(strings.ToLower(v), f) {
				hit = true
				break
			}
		}
		if !hit {
			return false
		}
	}
	return true
}

func (s *Server) appendRegisterRow(b []byte, id int, r *call.Register) []byte {
	loc := s.cfg.Location
	b = append(b, '[')
	b = strconv.AppendInt(b, int64(id), 10)
	b = append(b, ',')
	b = strconv.AppendInt(b, int64(s.cfg.SensorID), 10)
	b = append(b, ',')
	b = appendJSONString(b, r.CallID)
	b = append(b, ',')
	b = appendDateTimeMs(b, r.Time, loc)
	b = append(b, ',')
	b = appendIPNum(b, r.CallerIP)
	b = append(b, ',')
	b = appendIPNum(b, r.CalledIP)
	b = append(b, ",0,0,255,255,"...)
	b = strconv.AppendUint(b, uint64(r.CallerPort), 10)
	b = append(b, ',')
	b = strconv.AppendUint(b, uint64(r.CalledPort), 10)
	for _, v := range [...]string{r.FromNum, "", r.FromDomain, r.ToNum, r.ToDomain, r.ContactNum, r.ContactDomain, r.DigestUsername, r.DigestRealm} {
		b = append(b, ',')
		b = appendOptString(b, v)
	}
	b = append(b, ',')
	b = strconv.AppendInt(b, int64(r.Expires), 10)
	b = append(b, ',')
	b = appendDateTimeMs(b, r.Time.Add(time.Duration(r.Expires)*time.Second), loc)
	b = append(b, ',')
	b = strconv.AppendInt(b, int64(r.State), 10)
	b = append(b, ',')
	b = appendOptString(b, r.UA)
	b = append(b, ",null,0,0,65534,null,null]"...)
	return b
}
