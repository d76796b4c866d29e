package webui

import (
	"context"
	"errors"
	"fmt"
	"html"
	"io"
	"io/fs"
	"net/http"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"time"

	"pbx-agent/sniffer/decode"
	"pbx-agent/sniffer/sip"
	"pbx-agent/webui/cdrquery"
)

// sipEvent is one SIP message of a call's history.
type sipEvent struct {
	at               time.Time
	src, dst         netip.AddrPort
	length           int
	sdp              bool
	request          bool
	msg              string
	srcText, dstText string
	text             string // the whole message (console)
	leg              uint64 // CDR id of the pcap it came from
}

// maxHistory bounds the messages read from one call's SIP pcap.
const maxHistory = 5000

// sipHistory reads the SIP pcaps of refs into one time-ordered list.
func (h *Handler) sipHistory(ctx context.Context, refs []cdrRef, hide []netip.Prefix) ([]sipEvent, error) {
	if h.o.Spool == nil {
		return nil, fmt.Errorf("%w: no spool configured", ErrUnavailable)
	}
	var out []sipEvent
	found := false
	for _, c := range refs {
		f, err := h.o.Spool.Open(ctx, SpoolFile{Kind: KindSIP, CallDate: c.CallDate, Basename: c.Basename, SensorID: c.Sensor})
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		found = true
		evs, err := readSIPEvents(f, maxHistory-len(out))
		f.Close()
		if err != nil {
			return nil, err
		}
		for i := range evs {
			evs[i].leg = c.ID
		}
		out = append(out, evs...)
	}
	if !found {
		return nil, fmt.Errorf("%w: the SIP pcap of the call is not in the spool", fs.ErrNotExist)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].at.Before(out[j].at) })
	for i := range out {
		e := &out[i]
		e.srcText, e.dstText = e.src.Addr().String(), e.dst.Addr().String()
		for _, p := range hide {
			if p.Contains(e.src.Addr().Unmap()) {
				e.msg = strings.ReplaceAll(e.msg, e.srcText, "hidden")
				e.srcText = "hidden"
			}
			if p.Contains(e.dst.Addr().Unmap()) {
				e.msg = strings.ReplaceAll(e.msg, e.dstText, "hidden")
				e.dstText = "hidden"
			}
		}
	}
	return out, nil
}

func readSIPEvents(r io.Reader, max int) ([]sipEvent, error) {
	pr, err := openCapture(r)
	if err != nil {
		return nil, err
	}
	dec, err := decode.New(pr.LinkType())
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadCapture, err)
	}
	var out []sipEvent
	var pkt decode.Packet
	var m sip.Message
	for len(out) < max {
		data, ci, err := pr.ReadPacket()
		if err != nil {
			if errors.Is(err, io.EOF) { // a capture cut short too
				break
			}
			return nil, fmt.Errorf("%w: %v", ErrBadCapture, err)
		}
		ok, err := dec.Decode(data, ci.Timestamp, &pkt)
		if !ok || err != nil {
			continue
		}
		b := pkt.Payload
		for len(b) > 0 && len(out) < max {
			n, err := sip.Parse(b, &m)
			if err != nil || n <= 0 {
				break
			}
			raw := m.Raw()
			e := sipEvent{at: ci.Timestamp, src: pkt.Src, dst: pkt.Dst, length: len(raw), request: m.Request,
				sdp: len(sip.SDPBody(&m)) > 0, text: string(raw)}
			if m.Request {
				e.msg = string(m.Method) + " " + string(m.RequestURI)
			} else {
				e.msg = strconv.Itoa(m.StatusCode) + " " + string(m.Reason)
			}
			e.msg += " len:" + strconv.Itoa(e.length)
			out = append(out, e)
			if pkt.Transport == decode.UDP {
				break
			}
			b = b[n:]
		}
	}
	return out, nil
}

func parseHide(v string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range strings.Split(v, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		p, _, err := cdrquery.AddrOrPrefix(s)
		if err != nil {
			return nil, fmt.Errorf("%w: ip_not_allowed: %q is not an address or network", ErrBadRequest, s)
		}
		out = append(out, p)
	}
	return out, nil
}

// pcap2text is php/pcap2text.php: action=brief_data|brief|getMSC, id=CDR id.
func (h *Handler) pcap2text(w http.ResponseWriter, r *http.Request) {
	u, ok := h.needForm(w, r, CanCDR)
	if !ok {
		return
	}
	action := r.Form.Get("action")
	switch action {
	case "brief_data", "brief", "getMSC":
	default:
		h.fail(w, r, fmt.Errorf("%w: action must be brief_data, brief or getMSC", ErrBadRequest))
		return
	}
	id, err := parseID("id", r.Form.Get("id"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if v := r.Form.Get("dns_lookup"); v != "" && v != "0" && v != "1" {
		h.fail(w, r, fmt.Errorf("%w: dns_lookup must be 0 or 1", ErrBadRequest))
		return
	}
	hide, err := parseHide(r.Form.Get("ip_not_allowed"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	ref, err := h.cdrByID(r.Context(), u, id)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	hist, err := h.sipHistory(r.Context(), []cdrRef{ref}, hide)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	switch action {
	case "brief_data":
		writeJSON(w, http.StatusOK, briefData(hist))
	case "brief":
		writeBrief(w, hist)
	default:
		writeMSC(w, hist)
	}
}

// briefData is the seed's JSON shape.
func briefData(hist []sipEvent) obj {
	results := make([]obj, 0, len(hist))
	for i, e := range hist {
		proto, typ := "SIP", "response"
		if e.sdp {
			proto = "SIP/SDP"
		}
		if e.request {
			typ = "request"
		}
		var at any = e.at.Sub(hist[0].at).Seconds()
		if i == 0 {
			at = 0 // PHP's first row is the integer 0 (seed)
		}
		results = append(results, obj{
			{"num", strconv.Itoa(i + 1)}, {"time", at},
			{"src", e.srcText}, {"dst", e.dstText}, {"srcip", e.srcText}, {"dstip", e.dstText},
			{"srcport", strconv.Itoa(int(e.src.Port()))}, {"dstport", strconv.Itoa(int(e.dst.Port()))},
			{"packet_len", strconv.Itoa(e.length)}, {"direction", "-->"}, {"protocol", proto},
			{"spec_type", nil}, {"msg", e.msg}, {"type", typ},
		})
	}
	return obj{{"results", results}, {"total", len(results)}, {"errors", obj{}}, {"success", true}, {"_debug", false}}
}

func htmlHead(w http.ResponseWriter, title string) *strings.Builder {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	b := &strings.Builder{}
	b.WriteString("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>" + html.EscapeString(title) + "</title>")
	b.WriteString("<style>body{font-family:sans-serif}table{border-collapse:collapse}td,th{border:1px solid #999;padding:2px 6px;font-size:13px}</style></head><body>\n")
	return b
}

// writeBrief is action=brief: the history as an HTML table.
func writeBrief(w http.ResponseWriter, hist []sipEvent) {
	b := htmlHead(w, "SIP history")
	b.WriteString("<table class=\"sip-history\">\n<tr><th>#</th><th>time</th><th>source</th><th>destination</th><th>protocol</th><th>message</th></tr>\n")
	for i, e := range hist {
		proto := "SIP"
		if e.sdp {
			proto = "SIP/SDP"
		}
		fmt.Fprintf(b, "<tr><td>%d</td><td>%.6f</td><td>%s:%d</td><td>%s:%d</td><td>%s</td><td>%s</td></tr>\n",
			i+1, e.at.Sub(hist[0].at).Seconds(), html.EscapeString(e.srcText), e.src.Port(),
			html.EscapeString(e.dstText), e.dst.Port(), proto, html.EscapeString(e.msg))
	}
	b.WriteString("</table>\n</body></html>\n")
	_, _ = io.WriteString(w, b.String())
}

// writeMSC is action=getMSC: an SVG ladder diagram, one lifeline per
// address:port, one arrow per message, time on the left.
func writeMSC(w http.ResponseWriter, hist []sipEvent) {
	var nodes []string
	index := map[string]int{}
	node := func(text string, port uint16) int {
		k := text + ":" + strconv.Itoa(int(port))
		if i, ok := index[k]; ok {
			return i
		}
		index[k] = len(nodes)
		nodes = append(nodes, k)
		return len(nodes) - 1
	}
	type arrow struct{ from, to int }
	arrows := make([]arrow, len(hist))
	for i, e := range hist {
		arrows[i] = arrow{node(e.srcText, e.src.Port()), node(e.dstText, e.dst.Port())}
	}
	const left, colW, top, rowH = 110, 260, 50, 34
	width := left + max(1, len(nodes))*colW
	height := top + (len(hist)+1)*rowH
	x := func(i int) int { return left + i*colW + colW/2 }
	b := htmlHead(w, "SIP ladder diagram")
	fmt.Fprintf(b, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" font-family=\"sans-serif\" font-size=\"12\">\n", width, height)
	b.WriteString("<defs><marker id=\"ah\" markerWidth=\"10\" markerHeight=\"8\" refX=\"10\" refY=\"4\" orient=\"auto\"><path d=\"M0,0 L10,4 L0,8 z\"/></marker></defs>\n")
	for i, n := range nodes {
		fmt.Fprintf(b, "<text x=\"%d\" y=\"20\" text-anchor=\"middle\" font-weight=\"bold\">%s</text>\n", x(i), html.EscapeString(n))
		fmt.Fprintf(b, "<line x1=\"%d\" y1=\"30\" x2=\"%d\" y2=\"%d\" stroke=\"#888\" stroke-dasharray=\"4,3\"/>\n", x(i), x(i), height-10)
	}
	for i, e := range hist {
		y := top + i*rowH + rowH/2
		a := arrows[i]
		color := "#1a5fb4"
		if !e.request {
			color = "#26a269"
			if strings.HasPrefix(e.msg, "4") || strings.HasPrefix(e.msg, "5") || strings.HasPrefix(e.msg, "6") {
				color = "#c01c28"
			}
		}
		fmt.Fprintf(b, "<text x=\"4\" y=\"%d\">%.3f s</text>\n", y+4, e.at.Sub(hist[0].at).Seconds())
		if a.from == a.to {
			fmt.Fprintf(b, "<path d=\"M%d,%d h30 v10 h-30\" fill=\"none\" stroke=\"%s\" marker-end=\"url(#ah)\"/>\n", x(a.from), y-5, color)
		} else {
			fmt.Fprintf(b, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"%s\" stroke-width=\"1.5\" marker-end=\"url(#ah)\"/>\n",
				x(a.from), y, x(a.to), y, color)
		}
		fmt.Fprintf(b, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\" fill=\"%s\">%s</text>\n",
			(x(a.from)+x(a.to))/2, y-4, color, html.EscapeString(e.msg))
	}
	b.WriteString("</svg>\n</body></html>\n")
	_, _ = io.WriteString(w, b.String())
}

// writeReportHTML is reportSummary with json=false.
func writeReportHTML(w http.ResponseWriter, name, from, to string, names []string, sum, groups []obj) {
	b := htmlHead(w, "Report "+name)
	fmt.Fprintf(b, "<h1>%s</h1>\n<p>%s – %s</p>\n<table>\n", html.EscapeString(name), html.EscapeString(from), html.EscapeString(to))
	if len(sum) == 1 {
		for _, m := range sum[0] {
			fmt.Fprintf(b, "<tr><th>%s</th><td>%s</td></tr>\n", html.EscapeString(m.k), html.EscapeString(cell(m.v)))
		}
	}
	b.WriteString("</table>\n<h2>By SIP response</h2>\n<table>\n<tr><th>response</th><th>calls</th><th>ASR %</th><th>ACD s</th><th>MOS</th></tr>\n")
	for _, g := range groups {
		get := func(k string) string {
			for _, m := range g {
				if m.k == k {
					return cell(m.v)
				}
			}
			return ""
		}
		fmt.Fprintf(b, "<tr><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td></tr>\n",
			html.EscapeString(get("lastSIPresponse")), get("cnt_all"), get("asr_all"), get("acd_all"), get("mos_all"))
	}
	b.WriteString("</table>\n</body></html>\n")
	_ = names
	_, _ = io.WriteString(w, b.String())
}

func cell(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	return ""
}
