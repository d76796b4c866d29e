package asteriskconf

import (
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Defaults of manager.conf [general] and of user options (manager.conf.sample).
const (
	DefaultPort         = 5038
	DefaultTLSPort      = 5039
	DefaultAuthTimeout  = 30 * time.Second
	DefaultAuthLimit    = 50
	DefaultHTTPTimeout  = 60 * time.Second
	DefaultWriteTimeout = 100 * time.Millisecond
)

// General is manager.conf's [general] section.
type General struct {
	Enabled            bool
	WebEnabled         bool
	Port               int
	BindAddr           netip.Addr
	TLSEnable          bool
	TLSBindAddr        netip.AddrPort
	DisplayConnects    bool
	TimestampEvents    bool
	AllowMultipleLogin bool
	AuthTimeout        time.Duration
	AuthLimit          int
	HTTPTimeout        time.Duration
	ChannelVars        []string `json:",omitempty"`
	DisabledEvents     []string `json:",omitempty"`
	Debug              bool
}

// FilterMethod is how an advanced eventfilter matches.
type FilterMethod string

// EventFilter is one eventfilter line. The legacy form (eventfilter = [!]regex)
// has Legacy set and Regex applied to the whole event text; the advanced form
// (eventfilter(action(..),name(..),header(..),method(..)) = expr) matches an
// event name and/or one header.
type EventFilter struct {
	Exclude bool
	Legacy  bool         `json:",omitempty"`
	Name    string       `json:",omitempty"` // advanced: event name that must match exactly
	Header  string       `json:",omitempty"` // advanced: header whose value is tested ("" = whole event)
	Method  FilterMethod `json:",omitempty"` // regex, exact, starts_with, ends_with, contains, none
	Expr    string
	re      *regexp.Regexp
}

// User is one manager.conf user section.
type User struct {
	Name               string
	Secret             string `json:"-"`
	HasSecret          bool
	ACL                ACL
	Read, Write        Class
	EventFilters       []EventFilter `json:",omitempty"`
	WriteTimeout       time.Duration
	DisplayConnects    bool
	AllowMultipleLogin bool
	SetVars            []string `json:",omitempty"`
	File               string
	Line               int
}

// Manager is the manager.conf model.
type Manager struct {
	General  General
	Users    []*User
	Warnings []string `json:",omitempty"`
}

// User returns the user with the given name (case-insensitive), or nil.
func (m *Manager) User(name string) *User {
	for _, u := range m.Users {
		if strings.EqualFold(u.Name, name) {
			return u
		}
	}
	return nil
}

// LoadManager loads name (usually "manager.conf") from fsys and builds the
// model. aclName, when not empty, is acl.conf for named ACLs; a missing acl.conf
// leaves named ACLs unresolved (they then refuse every address, as Asterisk does).
func LoadManager(fsys fs.FS, name, aclName string) (*Manager, error) {
	cfg, err := Load(fsys, name)
	if err != nil {
		return nil, err
	}
	var acls *Config
	if aclName != "" {
		acls, err = Load(fsys, aclName)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
	}
	return NewManager(cfg, acls)
}

// NewManager builds the model from a loaded manager.conf and, optionally, acl.conf.
func NewManager(cfg *Config, acls *Config) (*Manager, error) {
	m := &Manager{General: General{
		Port: DefaultPort, BindAddr: netip.IPv4Unspecified(), DisplayConnects: true,
		AllowMultipleLogin: true, AuthTimeout: DefaultAuthTimeout, AuthLimit: DefaultAuthLimit,
		HTTPTimeout: DefaultHTTPTimeout,
	}}
	m.Warnings = append(m.Warnings, cfg.Warnings...)
	if g := cfg.Section("general"); g != nil {
		if err := m.general(g); err != nil {
			return nil, err
		}
	}
	seen := map[string]bool{}
	for _, s := range cfg.Sections {
		if s.Template || strings.EqualFold(s.Name, "general") {
			continue
		}
		key := strings.ToLower(s.Name)
		if seen[key] {
			m.Warnings = append(m.Warnings, fmt.Sprintf("%s:%d: duplicate user [%s] ignored", s.File, s.Line, s.Name))
			continue
		}
		seen[key] = true
		u, err := m.user(s, acls)
		if err != nil {
			return nil, err
		}
		m.Users = append(m.Users, u)
	}
	return m, nil
}

func valueErr(v Var, format string, args ...any) error {
	return posErr(v.File, v.Line, ErrValue, "%s = %q: "+format, append([]any{v.Name, v.Value}, args...)...)
}

// ParseBool reads v's value as ast_true / ast_false do (yes, no, on, off,
// 1, 0, ...); unknown words are an error here.
func ParseBool(v Var) (bool, error) { return parseBool(v) }

func parseBool(v Var) (bool, error) {
	switch strings.ToLower(v.Value) {
	case "yes", "true", "y", "t", "1", "on":
		return true, nil
	case "no", "false", "n", "f", "0", "off":
		return false, nil
	}
	return false, valueErr(v, "not a yes/no value")
}

func parseInt(v Var, lo, hi int) (int, error) {
	n, err := strconv.Atoi(v.Value)
	if err != nil || n < lo || n > hi {
		return 0, valueErr(v, "want an integer in [%d, %d]", lo, hi)
	}
	return n, nil
}

func splitList(s string) []string {
	var out []string
	for _, w := range strings.Split(s, ",") {
		if w = strings.TrimSpace(w); w != "" {
			out = append(out, w)
		}
	}
	return out
}

func (m *Manager) general(s *Section) error {
	g := &m.General
	var err error
	tlsPort := DefaultTLSPort
	for _, v := range s.Vars {
		switch strings.ToLower(v.Name) {
		case "enabled":
			g.Enabled, err = parseBool(v)
		case "webenabled":
			g.WebEnabled, err = parseBool(v)
		case "port":
			g.Port, err = parseInt(v, 1, 65535)
		case "bindaddr":
			g.BindAddr, err = netip.ParseAddr(v.Value)
			if err != nil {
				err = valueErr(v, "not an IP address")
			}
		case "tlsenable", "sslenable":
			g.TLSEnable, err = parseBool(v)
		case "tlsbindaddr", "sslbindaddr":
			if ap, e := netip.ParseAddrPort(v.Value); e == nil {
				g.TLSBindAddr = ap
			} else if a, e := netip.ParseAddr(v.Value); e == nil {
				g.TLSBindAddr = netip.AddrPortFrom(a, uint16(tlsPort))
			} else {
				err = valueErr(v, "not an address[:port]")
			}
		case "displayconnects":
			g.DisplayConnects, err = parseBool(v)
		case "timestampevents":
			g.TimestampEvents, err = parseBool(v)
		case "allowmultiplelogin":
			g.AllowMultipleLogin, err = parseBool(v)
		case "debug":
			g.Debug, err = parseBool(v)
		case "authtimeout":
			var n int
			n, err = parseInt(v, 1, 1<<30)
			g.AuthTimeout = time.Duration(n) * time.Second
		case "authlimit":
			g.AuthLimit, err = parseInt(v, 1, 1<<30)
		case "httptimeout":
			var n int
			n, err = parseInt(v, 1, 1<<30)
			g.HTTPTimeout = time.Duration(n) * time.Second
		case "channelvars":
			g.ChannelVars = splitList(v.Value)
		case "disabledevents":
			g.DisabledEvents = splitList(v.Value)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (m *Manager) user(s *Section, acls *Config) (*User, error) {
	u := &User{Name: s.Name, WriteTimeout: DefaultWriteTimeout, File: s.File, Line: s.Line,
		DisplayConnects: m.General.DisplayConnects, AllowMultipleLogin: m.General.AllowMultipleLogin}
	var err error
	for _, v := range s.Vars {
		name := strings.ToLower(v.Name)
		switch {
		case name == "secret":
			u.Secret, u.HasSecret = v.Value, true
		case name == "permit" || name == "deny":
			u.ACL.Rules, err = AppendRules(u.ACL.Rules, name == "permit", v.Value)
			if err != nil {
				return nil, valueErr(v, "%v", err)
			}
		case name == "acl":
			for _, n := range splitList(v.Value) {
				u.ACL.Named = append(u.ACL.Named, n)
				u.ACL.Resolved = append(u.ACL.Resolved, resolveACL(acls, n))
			}
		case name == "read" || name == "write":
			c, unknown := ParseClass(v.Value)
			for _, w := range unknown {
				m.Warnings = append(m.Warnings, fmt.Sprintf("%s:%d: unknown class %q ignored", v.File, v.Line, w))
			}
			if name == "read" {
				u.Read = c
			} else {
				u.Write = c
			}
		case name == "writetimeout":
			n, e := strconv.Atoi(v.Value)
			if e != nil || n < 100 {
				// Asterisk rejects values below 100 ms and keeps the default.
				m.Warnings = append(m.Warnings, fmt.Sprintf("%s:%d: writetimeout %q invalid (< 100 ms); default kept", v.File, v.Line, v.Value))
				continue
			}
			u.WriteTimeout = time.Duration(n) * time.Millisecond
		case name == "displayconnects":
			u.DisplayConnects, err = parseBool(v)
		case name == "allowmultiplelogin":
			u.AllowMultipleLogin, err = parseBool(v)
		case name == "setvar":
			u.SetVars = append(u.SetVars, v.Value)
		case name == "eventfilter" || strings.HasPrefix(name, "eventfilter("):
			f, e := parseFilter(v)
			if e != nil {
				// Asterisk logs a bad filter and goes on without it.
				m.Warnings = append(m.Warnings, e.Error())
				continue
			}
			u.EventFilters = append(u.EventFilters, f)
		}
		if err != nil {
			return nil, err
		}
	}
	return u, nil
}

func resolveACL(acls *Config, name string) []Rule {
	if acls == nil {
		return nil
	}
	s := acls.Section(name)
	if s == nil {
		return nil
	}
	rules := []Rule{}
	for _, v := range s.Vars {
		if n := strings.ToLower(v.Name); n == "permit" || n == "deny" {
			r, err := AppendRules(rules, n == "permit", v.Value)
			if err != nil {
				return nil // an invalid named ACL refuses everyone
			}
			rules = r
		}
	}
	return rules
}

func parseFilter(v Var) (EventFilter, error) {
	f := EventFilter{Method: "regex", Expr: v.Value}
	if strings.EqualFold(v.Name, "eventfilter") {
		f.Legacy = true
		if strings.HasPrefix(f.Expr, "!") {
			f.Exclude, f.Expr = true, f.Expr[1:]
		}
	} else {
		// Check the ')' first: "eventfilter(" alone has nothing to slice.
		if len(v.Name) <= len("eventfilter(") || !strings.HasSuffix(v.Name, ")") {
			return f, valueErr(v, "eventfilter options without closing ')'")
		}
		args := v.Name[len("eventfilter(") : len(v.Name)-1]
		for _, a := range splitTop(args) {
			k, val, ok := strings.Cut(a, "(")
			if !ok || !strings.HasSuffix(val, ")") {
				return f, valueErr(v, "bad eventfilter option %q", a)
			}
			val = val[:len(val)-1]
			switch strings.ToLower(strings.TrimSpace(k)) {
			case "action":
				f.Exclude = strings.EqualFold(val, "exclude")
			case "name":
				f.Name = val
			case "header":
				f.Header = strings.TrimSuffix(val, ":")
			case "method":
				f.Method = FilterMethod(strings.ToLower(val))
			default:
				return f, valueErr(v, "unknown eventfilter option %q", k)
			}
		}
	}
	if f.Method == "regex" {
		re, err := regexp.Compile(f.Expr)
		if err != nil {
			return f, valueErr(v, "bad regex: %v", err)
		}
		f.re = re
	}
	return f, nil
}

// splitTop splits "a(x),b(y,z)" on commas outside parentheses.
func splitTop(s string) []string {
	var out []string
	depth, start := 0, 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '(':
			depth++
		case ')':
			depth--
		case ',':
			if depth == 0 {
				out = append(out, strings.TrimSpace(s[start:i]))
				start = i + 1
			}
		}
	}
	if rest := strings.TrimSpace(s[start:]); rest != "" {
		out = append(out, rest)
	}
	return out
}

// matches reports whether one filter matches an event (name and wire text).
func (f *EventFilter) matches(event string, text string, header func(string) (string, bool)) bool {
	if f.Name != "" && !strings.EqualFold(f.Name, event) {
		return false
	}
	subject := text
	if f.Header != "" {
		v, ok := header(f.Header)
		if !ok {
			return false
		}
		subject = v
	}
	switch f.Method {
	case "regex":
		return f.re != nil && f.re.MatchString(subject)
	case "exact":
		return subject == f.Expr
	case "starts_with":
		return strings.HasPrefix(subject, f.Expr)
	case "ends_with":
		return strings.HasSuffix(subject, f.Expr)
	case "contains":
		return strings.Contains(subject, f.Expr)
	case "none", "":
		return true
	}
	return false
}

// EventAllowed applies the user's eventfilters the way Asterisk does: no
// filters → everything; include filters → the event must match one; then any
// matching exclude filter drops it. text is the event as sent ("Event: X\r\n...").
func (u *User) EventAllowed(event, text string, header func(string) (string, bool)) bool {
	hasInclude, included := false, false
	for i := range u.EventFilters {
		f := &u.EventFilters[i]
		if !f.Exclude {
			hasInclude = true
			if !included && f.matches(event, text, header) {
				included = true
			}
		}
	}
	if hasInclude && !included {
		return false
	}
	for i := range u.EventFilters {
		f := &u.EventFilters[i]
		if f.Exclude && f.matches(event, text, header) {
			return false
		}
	}
	return true
}
