package webui

import (
	"context"
	"fmt"
	"net/http"
	"strconv"

	"pbx-agent/webui/cdrquery"
)

// sqlPHP is php/model/sql.php: module=bypass_login, and task=LISTING&module=CDR.
func (h *Handler) sqlPHP(w http.ResponseWriter, r *http.Request) {
	if err := form(r); err != nil {
		h.fail(w, r, err)
		return
	}
	switch module, task := r.Form.Get("module"), r.Form.Get("task"); {
	case module == "bypass_login":
		h.bypassLogin(w, r)
	case module == "logout":
		h.logout(w, r)
	case task == "LISTING" && module == "CDR":
		u, ok := h.need(w, r, CanCDR)
		if !ok {
			return
		}
		h.listing(w, r, u, r.Form, true)
	case task == "" && module == "":
		h.fail(w, r, fmt.Errorf("%w: task and module are required (module=bypass_login, or task=LISTING&module=CDR)", ErrBadRequest))
	default:
		h.fail(w, r, fmt.Errorf("%w: unsupported task %q module %q (supported: module=bypass_login, module=logout, task=LISTING&module=CDR)", ErrBadRequest, task, module))
	}
}

// bypassLogin answers {"SID":…,"cookie_name":"PHPSESSID","success":true,…}
// and sets the cookie too.
func (h *Handler) bypassLogin(w http.ResponseWriter, r *http.Request) {
	name, pass := r.Form.Get("user"), r.Form.Get("pass")
	if pass == "" {
		pass = r.Form.Get("password")
	}
	if !h.o.DisableAuth {
		if name == "" {
			h.fail(w, r, fmt.Errorf("%w: user and pass are required", ErrBadRequest))
			return
		}
		u, err := h.login(name, pass, clientAddr(r))
		if err != nil {
			h.fail(w, r, err)
			return
		}
		name = u.Name
	}
	stamp := ""
	if u := h.users.Load().get(name); u != nil && !h.o.DisableAuth {
		stamp = userStamp(u)
	}
	sid := h.sessions.create(name, stamp, h.now())
	cn := cookieName(r.PathValue("prefix"))
	http.SetCookie(w, &http.Cookie{Name: cn, Value: sid, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: r.TLS != nil})
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, obj{
		{"SID", sid}, {"cookie_name", cn}, {"success", true},
		{"_vm_version", h.o.VMVersion}, {"_debug", false},
	})
}

// logout ends the session of the request's cookie and clears the cookie.
func (h *Handler) logout(w http.ResponseWriter, r *http.Request) {
	cn := cookieName(r.PathValue("prefix"))
	if c, err := r.Cookie(cn); err == nil && c.Value != "" {
		h.sessions.remove(c.Value)
	}
	http.SetCookie(w, &http.Cookie{Name: cn, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: r.TLS != nil})
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, obj{{"success", true}})
}

// listing answers a LISTING request: {"total":"N","results":[…]}, or
// {"total":"N"} with suppress_results, or the SIP-response summary rows
// with groupBy=lastSIPresponse.
func (h *Handler) listing(w http.ResponseWriter, r *http.Request, u *User, p cdrquery.Params, requireDate bool) {
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
	q, err := cdrquery.Parse(p, cdrquery.Options{Location: h.o.Location, RequireDate: requireDate, Sensors: u.Sensors, IPv6: v6})
	if err != nil {
		h.fail(w, r, err)
		return
	}
	ctx := r.Context()
	countSQL, countArgs := q.CountSQL()
	listSQL, listArgs := q.ListSQL()
	names := cdrquery.Columns()
	if q.Group != "" {
		countSQL, countArgs = q.GroupCountSQL()
		listSQL, listArgs = q.GroupSQL()
		names = cdrquery.GroupColumns()
	}
	total, err := queryCount(ctx, db, countSQL, countArgs...)
	if err != nil {
		h.fail(w, r, fmt.Errorf("count: %w", err))
		return
	}
	if q.Suppress {
		writeJSON(w, http.StatusOK, obj{{"total", strconv.FormatInt(total, 10)}})
		return
	}
	results, err := h.queryObjs(ctx, names, 0, listSQL, listArgs...)
	if err != nil {
		h.fail(w, r, fmt.Errorf("listing: %w", err))
		return
	}
	writeJSON(w, http.StatusOK, obj{{"total", strconv.FormatInt(total, 10)}, {"results", results}})
}

// queryObjs runs a query and returns its rows as objects with names.
func (h *Handler) queryObjs(ctx context.Context, names []string, max int, q string, args ...any) ([]obj, error) {
	db, err := h.db()
	if err != nil {
		return nil, err
	}
	rs, err := db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	rows, err := scanStrings(rs, max)
	if err != nil {
		return nil, err
	}
	out := make([]obj, 0, len(rows))
	for _, row := range rows {
		out = append(out, rowObj(names, row))
	}
	return out, nil
}

// adminPHP is admin.php?cdr_filter={…}: the filtered listing as JSON (the
// GUI would render it; scripts get the rows).
func (h *Handler) adminPHP(w http.ResponseWriter, r *http.Request) {
	if err := form(r); err != nil {
		h.fail(w, r, err)
		return
	}
	u, ok := h.need(w, r, CanCDR)
	if !ok {
		return
	}
	raw := r.Form.Get("cdr_filter")
	if raw == "" {
		h.fail(w, r, fmt.Errorf("%w: cdr_filter is required, e.g. cdr_filter={fcallid:\"…\"}", ErrBadRequest))
		return
	}
	p, err := cdrquery.ParseObject(raw)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.listing(w, r, u, p, false)
}
