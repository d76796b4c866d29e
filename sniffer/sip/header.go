package sip

// Header returns the first value of the header name (case-insensitive; full
// or compact form), or nil. Folded values keep their CRLF and indentation.
func (m *Message) Header(name string) []byte {
	id := lookupID(name)
	for k := 0; k < m.nh; k++ {
		h := &m.hdrs[k]
		if h.id == id && (id != hUnknown || equalFold(m.raw[h.ns:h.ne], name)) {
			return m.raw[h.vs:h.ve]
		}
	}
	return nil
}

// Headers calls fn for every value of the header name, in order, until fn
// returns false. For list headers (Via, Contact, Route, Record-Route,
// Allow, Supported, ...) comma-joined values are split, commas inside
// quotes or <...> excepted; other headers are passed whole.
func (m *Message) Headers(name string, fn func(v []byte) bool) {
	id := lookupID(name)
	list := id != hUnknown && hdrNames[id].list
	stop := false
	each := func(e []byte) bool {
		if len(e) == 0 {
			return true
		}
		if !fn(e) {
			stop = true
			return false
		}
		return true
	}
	for k := 0; k < m.nh && !stop; k++ {
		h := &m.hdrs[k]
		if h.id != id || (id == hUnknown && !equalFold(m.raw[h.ns:h.ne], name)) {
			continue
		}
		v := m.raw[h.vs:h.ve]
		if list {
			if err := splitList(v, each); err != nil {
				each(v)
			}
		} else {
			each(v)
		}
	}
}

// VisitHeaders calls fn with every indexed header line's name (as written)
// and value, in order, until fn returns false.
func (m *Message) VisitHeaders(fn func(name, value []byte) bool) {
	for k := 0; k < m.nh; k++ {
		h := &m.hdrs[k]
		if !fn(m.raw[h.ns:h.ne], m.raw[h.vs:h.ve]) {
			return
		}
	}
}

// UserAgent returns User-Agent, else Server, else nil.
func (m *Message) UserAgent() []byte {
	if v := m.Header("User-Agent"); v != nil {
		return v
	}
	return m.Header("Server")
}
