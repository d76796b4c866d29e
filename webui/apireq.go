package webui

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"mime"
	"net/http"
	"strconv"
	"strings"
)

// apiRequest is one php/api.php call, from GET/POST form fields (params
// as a JSON string) or from a JSON body.
type apiRequest struct {
	Task        string
	User        string
	Password    string
	AuditReason string
	Flags       int64
	Params      []params // one object, or the items of an array
	Array       bool     // params was an array
	rawParams   string
}

// params is one params object; values may be strings, numbers or booleans.
type params map[string]json.RawMessage

type apiBody struct {
	Task        string          `json:"task"`
	User        string          `json:"user"`
	Password    string          `json:"password"`
	AuditReason string          `json:"auditReason"`
	Flags       json.RawMessage `json:"flags"`
	Params      json.RawMessage `json:"params"`
}

func parseAPIRequest(r *http.Request) (*apiRequest, error) {
	var b apiBody
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if r.Method == http.MethodPost && ct != "application/x-www-form-urlencoded" && ct != "multipart/form-data" {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			return nil, err
		}
		t := bytes.TrimSpace(body)
		if len(t) > 0 && t[0] == '{' {
			dec := json.NewDecoder(bytes.NewReader(t))
			if err := dec.Decode(&b); err != nil {
				return nil, fmt.Errorf("%w: JSON body: %v", ErrBadRequest, err)
			}
		} else if len(t) > 0 {
			r.Body = io.NopCloser(bytes.NewReader(body))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
	}
	if err := form(r); err != nil {
		return nil, err
	}
	// Query/form fields fill what the JSON body left out.
	f := r.Form
	pick := func(dst *string, key string) {
		if *dst == "" {
			*dst = f.Get(key)
		}
	}
	pick(&b.Task, "task")
	pick(&b.User, "user")
	pick(&b.Password, "password")
	pick(&b.AuditReason, "auditReason")
	if len(b.Params) == 0 {
		if s := f.Get("params"); s != "" {
			b.Params = json.RawMessage(s)
		}
	}
	if len(b.Flags) == 0 {
		if s := f.Get("flags"); s != "" {
			b.Flags = json.RawMessage(strconv.Quote(s))
		}
	}
	req := &apiRequest{Task: b.Task, User: b.User, Password: b.Password, AuditReason: b.AuditReason, rawParams: string(b.Params)}
	if len(b.Flags) > 0 {
		n, err := rawInt(b.Flags)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("%w: flags: not a number", ErrBadRequest)
		}
		req.Flags = n
	}
	t := bytes.TrimSpace(b.Params)
	switch {
	case len(t) == 0 || string(t) == "null":
		req.Params = []params{{}}
	case t[0] == '[':
		var list []params
		if err := json.Unmarshal(t, &list); err != nil {
			return nil, fmt.Errorf("%w: params: not a JSON array of objects: %v", ErrBadRequest, err)
		}
		if len(list) == 0 || len(list) > 100 {
			return nil, fmt.Errorf("%w: params: an array needs 1 to 100 objects", ErrBadRequest)
		}
		req.Params, req.Array = list, true
	case t[0] == '{':
		var p params
		if err := json.Unmarshal(t, &p); err != nil {
			return nil, fmt.Errorf("%w: params: not a JSON object: %v", ErrBadRequest, err)
		}
		req.Params = []params{p}
	default:
		return nil, fmt.Errorf("%w: params: must be a JSON object or array", ErrBadRequest)
	}
	return req, nil
}

// rawInt reads a JSON number or numeric string.
func rawInt(raw json.RawMessage) (int64, error) {
	s, err := rawString(raw)
	if err != nil {
		return 0, err
	}
	s = strings.TrimSpace(s)
	if n, err := strconv.ParseInt(s, 0, 64); err == nil {
		return n, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f != math.Trunc(f) || math.Abs(f) > 1<<53 {
		return 0, fmt.Errorf("not a whole number")
	}
	return int64(f), nil
}

// rawString reads a JSON string, number or boolean as text.
func rawString(raw json.RawMessage) (string, error) {
	t := bytes.TrimSpace(raw)
	if len(t) == 0 {
		return "", nil
	}
	switch t[0] {
	case '"':
		var s string
		err := json.Unmarshal(t, &s)
		return s, err
	case '{', '[':
		return "", fmt.Errorf("an object or array where a value is expected")
	case 'n':
		return "", nil
	}
	return string(t), nil // number, true, false
}

// str returns params[key] as text ("" when absent); a non-scalar is an error.
func (p params) str(key string) (string, error) {
	raw, ok := p[key]
	if !ok {
		return "", nil
	}
	s, err := rawString(raw)
	if err != nil {
		return "", fmt.Errorf("%w: params.%s: %v", ErrBadRequest, key, err)
	}
	return s, nil
}

// num returns params[key] as a whole number within [lo, hi]; def when absent.
func (p params) num(key string, def, lo, hi int64) (int64, error) {
	raw, ok := p[key]
	if !ok {
		return def, nil
	}
	if s, _ := rawString(raw); s == "" {
		return def, nil
	}
	n, err := rawInt(raw)
	if err != nil || n < lo || n > hi {
		return 0, fmt.Errorf("%w: params.%s: not a whole number in [%d, %d]", ErrBadRequest, key, lo, hi)
	}
	return n, nil
}

// flag returns params[key] as a boolean (true/false, 1/0, yes/no).
func (p params) flag(key string) (bool, error) {
	s, err := p.str(key)
	if err != nil {
		return false, err
	}
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "0", "false", "no", "off":
		return false, nil
	case "1", "true", "yes", "on":
		return true, nil
	}
	return false, fmt.Errorf("%w: params.%s: must be true or false", ErrBadRequest, key)
}

// paramReader reads several parameters in a row and keeps the first error
// (a handler checks it once, after the reads).
type paramReader struct {
	p   params
	err error
}

func (r *paramReader) str(key string) string {
	if r.err != nil {
		return ""
	}
	v, err := r.p.str(key)
	r.err = err
	return v
}

func (r *paramReader) num(key string, def, lo, hi int64) int64 {
	if r.err != nil {
		return 0
	}
	v, err := r.p.num(key, def, lo, hi)
	r.err = err
	return v
}

func (r *paramReader) flag(key string) bool {
	if r.err != nil {
		return false
	}
	v, err := r.p.flag(key)
	r.err = err
	return v
}
