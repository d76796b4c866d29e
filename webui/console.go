package webui

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"strconv"
	"strings"
	"time"

	"pbx-agent/sniffer/codec"
	"pbx-agent/sniffer/spool"
	"pbx-agent/webui/cdrquery"
	"pbx-agent/webui/console"
)

// The operator's console (/console/): a calls history over sql.php's
// LISTING (the page sends LISTING parameters, so search has the API's
// semantics and limits), its CSV export, and one call's detail (legs, RTP
// streams, SIP ladder with each message's text, downloads behind rights).

// consoleCSP allows the console's own files only: no inline script or
// style, no other origin.
const consoleCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; media-src 'self' blob:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// consoleLegWindow is how far apart the legs of one call without a
// Linkedid may start (the by-CID grouping getPCAP's cidInterval does).
const consoleLegWindow = 60 * time.Second

var consoleTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
}

func (h *Handler) consoleRoutes() {
	h.mux.HandleFunc("GET /console/{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/console/calls.html", http.StatusFound)
	})
	files, _ := fs.ReadDir(console.Assets, "assets")
	for _, f := range files {
		h.mux.HandleFunc("GET /console/"+f.Name(), h.consoleAsset(f.Name()))
	}
	h.mux.HandleFunc("GET /console/api/me", h.consoleMe)
	h.mux.HandleFunc("GET /console/api/calls.csv", h.consoleCSV)
	h.mux.HandleFunc("GET /console/api/call", h.consoleCall)
	h.mux.HandleFunc("GET /console/api/sip.txt", h.consoleSIPText)
	h.mux.HandleFunc("GET /console/api/overview", h.consoleOverview)
	h.mux.HandleFunc("GET /console/api/registrations", h.consoleRegistrations)
}

// consoleAsset serves one embedded file; anyone may load the pages (they
// hold no data), the data routes check the session.
func (h *Handler) consoleAsset(name string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) { h.serveConsoleAsset(w, r, name) }
}

func (h *Handler) serveConsoleAsset(w http.ResponseWriter, r *http.Request, name string) {
	ct, known := "", false
	if i := strings.LastIndexByte(name, '.'); i >= 0 {
		ct, known = consoleTypes[name[i:]]
	}
	b, err := fs.ReadFile(console.Assets, "assets/"+name)
	if err != nil || !known || strings.ContainsAny(name, "/\\") {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", ct)
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Referrer-Policy", "same-origin")
	w.Header().Set("Content-Security-Policy", consoleCSP)
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	_, _ = w.Write(b)
}

// consoleMe: who the session is, what the pages may offer, and the default
// date range (the last 24 hours in the agent's time zone).
func (h *Handler) consoleMe(w http.ResponseWriter, r *http.Request) {
	u, ok := h.need(w, r, CanCDR)
	if !ok {
		return
	}
	now := h.now().In(h.o.Location)
	const layout = "2006-01-02T15:04:05"
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, obj{
		{"user", u.Name}, {"tz", h.o.Location.String()}, {"rights", u.Rights.Names()},
		{"default_from", now.Add(-24 * time.Hour).Format(layout)}, {"default_to", now.Add(time.Hour).Format(layout)},
	})
}

// csvCell keeps a spreadsheet from reading a cell as a formula (a leading
// =, @, tab or CR; + or - unless a number follows, as in +4420…).
func csvCell(s string) string {
	if s == "" {
		return s
	}
	switch s[0] {
	case '=', '@', '\t', '\r':
		return "'" + s
	case '+', '-':
		if len(s) == 1 || s[1] < '0' || s[1] > '9' {
			return "'" + s
		}
	}
	return s
}

// consoleCSV is the history's export: the LISTING parameters, every
// LISTING column, up to MaxLimit rows (5000) of the requested page.
func (h *Handler) consoleCSV(w http.ResponseWriter, r *http.Request) {
	u, ok := h.needForm(w, r, CanCDR)
	if !ok {
		return
	}
	db, err := h.db()
	if err != nil {
		h.fail(w, r, err)
		return
	}
	v6, err := h.ipv6(r.Context())
	if err != nil {
		h.fail(w, r, err)
		return
	}
	q, err := cdrquery.Parse(r.Form, cdrquery.Options{Location: h.o.Location, RequireDate: true, Sensors: u.Sensors, DefaultLimit: 5000, IPv6: v6})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	listSQL, args := q.ListSQL()
	rs, err := db.QueryContext(r.Context(), listSQL, args...)
	if err != nil {
		h.fail(w, r, fmt.Errorf("listing: %w", err))
		return
	}
	defer rs.Close()
	rows, err := scanStrings(rs, 0)
	if err != nil {
		h.fail(w, r, fmt.Errorf("listing: %w", err))
		return
	}
	attachment(w, "text/csv; charset=utf-8", "calls-"+h.now().In(h.o.Location).Format("20060102-150405")+".csv")
	cw := csv.NewWriter(w)
	_ = cw.Write(cdrquery.Columns())
	rec := make([]string, len(cdrquery.Columns()))
	for _, row := range rows {
		for i, v := range row {
			rec[i] = ""
			if s, ok := v.(string); ok {
				rec[i] = csvCell(s)
			}
		}
		_ = cw.Write(rec)
	}
	cw.Flush()
}

// consoleRef finds the CDR of ?id= or ?callid=.
func (h *Handler) consoleRef(ctx context.Context, r *http.Request, u *User) (cdrRef, error) {
	if cid := r.Form.Get("callid"); cid != "" && r.Form.Get("id") == "" {
		if len(cid) > 255 {
			return cdrRef{}, fmt.Errorf("%w: callid longer than 255 bytes", ErrBadRequest)
		}
		refs, err := h.queryCDRRefs(ctx, u, "c.ID IN (SELECT cdr_ID FROM cdr_next WHERE fbasename = ?)", spool.FBasename(cid))
		if err != nil {
			return cdrRef{}, err
		}
		if len(refs) == 0 {
			return cdrRef{}, fmt.Errorf("%w: no CDR with Call-ID %q yet (a call is stored when it ends)", ErrNotFound, cid)
		}
		return refs[0], nil
	}
	id, err := parseID("id", r.Form.Get("id"))
	if err != nil {
		return cdrRef{}, err
	}
	return h.cdrByID(ctx, u, id)
}

// consoleTarget authenticates r with right, finds the CDR it names and
// the call's legs; on failure it has answered.
func (h *Handler) consoleTarget(w http.ResponseWriter, r *http.Request, right Rights) (*User, cdrRef, consoleLegSet, bool) {
	u, ok := h.needForm(w, r, right)
	if !ok {
		return nil, cdrRef{}, consoleLegSet{}, false
	}
	ref, err := h.consoleRef(r.Context(), r, u)
	if err != nil {
		h.fail(w, r, err)
		return nil, cdrRef{}, consoleLegSet{}, false
	}
	legs, linked, err := h.consoleLegs(r.Context(), u, ref)
	if err != nil {
		h.fail(w, r, fmt.Errorf("legs: %w", err))
		return nil, cdrRef{}, consoleLegSet{}, false
	}
	return u, ref, consoleLegSet{legs, linked}, true
}

// consoleLegSet is a call's legs and the Linkedid that groups them ("":
// grouped by caller and time).
type consoleLegSet struct {
	refs     []cdrRef
	linkedid string
}

const consoleReasonSQL = `SELECT c.reason_sip_cause, rs.reason, c.reason_q850_cause, rq.reason, c.whohanged, c.bye
 FROM cdr c LEFT JOIN cdr_reason rs ON rs.id = c.reason_sip_text_id LEFT JOIN cdr_reason rq ON rq.id = c.reason_q850_text_id WHERE c.ID = ?`

// consoleRTPSQL: %[1]s and %[2]s render saddr and daddr (cdrquery.IPText),
// %[3]s are the ids' placeholders.
const consoleRTPSQL = "SELECT cdr_ID, `index`, %[1]s, sport, %[2]s, dport, ssrc, payload, received, loss, " +
	"maxjitter_mult10, firsttime, duration FROM cdr_rtp WHERE cdr_ID IN (%[3]s) ORDER BY cdr_ID, `index`"

var consoleRTPNames = []string{"cdr_id", "index", "saddr", "sport", "daddr", "dport", "ssrc", "payload", "received", "loss",
	"maxjitter_mult10", "firsttime", "duration"}

// consoleCall is GET /console/api/call?id=N (or callid=): the CDR with
// every LISTING field, the hang-up reason, the legs, each leg's RTP
// streams and the SIP messages of every leg in time order (their text
// only with can_pcap); ogg says whether this build encodes Ogg/Opus.
func (h *Handler) consoleCall(w http.ResponseWriter, r *http.Request) {
	u, ref, set, ok := h.consoleTarget(w, r, CanCDR)
	if !ok {
		return
	}
	legs := set.refs
	ctx := r.Context()
	v6, err := h.ipv6(ctx)
	if err != nil {
		h.fail(w, r, fmt.Errorf("cdr %d: %w", ref.ID, err))
		return
	}
	rows, err := h.queryObjs(ctx, cdrquery.Columns(), 1, cdrquery.SelectSQL(v6)+" WHERE c.ID = ?", ref.ID)
	if err != nil || len(rows) == 0 {
		h.fail(w, r, fmt.Errorf("cdr %d: %w", ref.ID, err))
		return
	}
	reason, err := h.queryObjs(ctx, []string{"reason_sip_cause", "reason_sip_text", "reason_q850_cause", "reason_q850_text", "whohanged", "bye"}, 1, consoleReasonSQL, ref.ID)
	if err != nil {
		h.fail(w, r, fmt.Errorf("reason: %w", err))
		return
	}
	ids := make([]any, len(legs))
	legObjs := make([]obj, len(legs))
	for i, l := range legs {
		ids[i] = l.ID
		legObjs[i] = obj{{"id", strconv.FormatUint(l.ID, 10)}, {"calldate", l.CallDate.Format("2006-01-02 15:04:05.000")},
			{"caller", l.Caller}, {"callid", l.Basename}, {"duration", l.Duration}, {"connect_duration", l.ConnectDuration},
			{"sensor", l.Sensor}, {"current", l.ID == ref.ID}}
	}
	streams, err := h.queryObjs(ctx, consoleRTPNames, 1000, fmt.Sprintf(consoleRTPSQL, cdrquery.IPText("saddr", v6), cdrquery.IPText("daddr", v6), strings.TrimSuffix(strings.Repeat("?,", len(ids)), ",")), ids...)
	if err != nil {
		h.fail(w, r, fmt.Errorf("streams: %w", err))
		return
	}
	asterisk, err := h.consoleAsterisk(ctx, ids)
	if err != nil {
		h.fail(w, r, fmt.Errorf("asterisk: %w", err))
		return
	}
	series, err := h.consoleSeries(ctx, ref)
	if err != nil {
		h.fail(w, r, fmt.Errorf("series: %w", err))
		return
	}
	withText := u.Rights.Has(CanPCAP)
	var msgs []obj
	sipErr := ""
	hist, err := h.sipHistory(ctx, legs, nil)
	if err != nil {
		sipErr = clean(err)
		if !isNotFound(err) {
			h.log.Warn("console SIP history", "id", ref.ID, "err", err)
		}
	}
	for _, e := range hist {
		var text any
		if withText {
			text = e.text
		}
		msgs = append(msgs, obj{{"t", e.at.Sub(hist[0].at).Seconds()}, {"at", e.at.In(h.o.Location).Format("2006-01-02 15:04:05.000000")},
			{"leg", strconv.FormatUint(e.leg, 10)}, {"src", e.src.String()}, {"dst", e.dst.String()},
			{"label", e.msg}, {"request", e.request}, {"text", text}})
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, obj{
		{"success", true}, {"cdr", rows[0]}, {"reason", firstObj(reason)}, {"legs", legObjs}, {"linkedid", set.linkedid},
		{"asterisk", asterisk}, {"streams", streams}, {"series", series},
		{"sip", msgs}, {"sip_error", sipErr}, {"sip_text", withText},
		{"can", obj{{"pcap", u.Rights.Has(CanPCAP)}, {"download_audio", u.Rights.Has(CanDownloadAudio)}, {"show_fax", u.Rights.Has(CanShowFax)}}},
		{"ogg", codec.Built}, // the recording as Ogg/Opus needs libopus
	})
}

func firstObj(o []obj) any {
	if len(o) == 0 {
		return nil
	}
	return o[0]
}

func isNotFound(err error) bool {
	return err != nil && (errors.Is(err, fs.ErrNotExist) || errors.Is(err, ErrNotFound))
}

// consoleSIPText is the call's SIP messages as text (every leg, time
// order), right can_pcap: the packets' content.
func (h *Handler) consoleSIPText(w http.ResponseWriter, r *http.Request) {
	_, ref, set, ok := h.consoleTarget(w, r, CanPCAP)
	if !ok {
		return
	}
	hist, err := h.sipHistory(r.Context(), set.refs, nil)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	var b strings.Builder
	for _, e := range hist {
		fmt.Fprintf(&b, "%s %s -> %s (CDR %d)\n%s\n", e.at.In(h.o.Location).Format("2006-01-02 15:04:05.000000"), e.src, e.dst, e.leg, strings.ReplaceAll(e.text, "\r\n", "\n"))
		if !strings.HasSuffix(e.text, "\n") {
			b.WriteString("\n")
		}
	}
	attachment(w, "text/plain; charset=utf-8", ref.Basename+".txt")
	_, _ = w.Write([]byte(b.String()))
}
