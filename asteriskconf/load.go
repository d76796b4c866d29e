package asteriskconf

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"
)

// MaxIncludeDepth bounds #include nesting (Asterisk stops at a similar depth).
const MaxIncludeDepth = 10

// MaxIncludedFiles and MaxIncludedBytes bound the whole expansion: a file
// that includes another many times, which includes another many times, …
// multiplies along every path, and the depth limit alone lets that reach
// billions of reads.
const (
	MaxIncludedFiles = 1000
	MaxIncludedBytes = 32 << 20
)

// Config is a loaded configuration: includes expanded, inheritance applied.
type Config struct {
	Sections []*Section
	Files    []string `json:",omitempty"` // files read, in order
	Warnings []string `json:",omitempty"` // "file:line: msg" for lines Asterisk only warns about
}

// Section is one [name] after expansion. Vars holds the inherited variables
// first (From = template name), then the section's own, in order.
type Section struct {
	Name     string
	Template bool     `json:",omitempty"`
	Inherits []string `json:",omitempty"`
	File     string
	Line     int
	Vars     []Var
}

// Section returns the first non-template section with the given name
// (case-insensitive), or nil.
func (c *Config) Section(name string) *Section {
	for _, s := range c.Sections {
		if !s.Template && strings.EqualFold(s.Name, name) {
			return s
		}
	}
	return nil
}

// Value returns the last value of the named variable (case-insensitive).
func (s *Section) Value(name string) (string, bool) {
	for i := len(s.Vars) - 1; i >= 0; i-- {
		if strings.EqualFold(s.Vars[i].Name, name) {
			return s.Vars[i].Value, true
		}
	}
	return "", false
}

// Values returns every value of the named variable in order.
func (s *Section) Values(name string) []string {
	var out []string
	for _, v := range s.Vars {
		if strings.EqualFold(v.Name, name) {
			out = append(out, v.Value)
		}
	}
	return out
}

// Load reads name from fsys and expands #include/#tryinclude. Relative include
// paths are resolved against the directory of name (Asterisk's config
// directory); absolute ones are looked up in fsys with the leading '/' removed.
func Load(fsys fs.FS, name string) (*Config, error) {
	l := &loader{fsys: fsys, dir: path.Dir(name), cfg: &Config{}}
	data, err := fs.ReadFile(fsys, name)
	if err != nil {
		return nil, fmt.Errorf("asteriskconf: %w", err)
	}
	l.bytes = int64(len(data))
	if _, err := l.load(name, data, nil); err != nil {
		return nil, err
	}
	return l.cfg, nil
}

type loader struct {
	fsys  fs.FS
	dir   string
	cfg   *Config
	stack []string
	bytes int64 // read so far, every file counted each time it is included
}

func (l *loader) warn(file string, line int, format string, args ...any) {
	l.cfg.Warnings = append(l.cfg.Warnings, fmt.Sprintf("%s:%d: ", file, line)+fmt.Sprintf(format, args...))
}

func (l *loader) find(name string) *Section {
	for _, s := range l.cfg.Sections {
		if strings.EqualFold(s.Name, name) {
			return s
		}
	}
	return nil
}

// load processes one file whose lines before its first header belong to cur.
func (l *loader) load(name string, data []byte, cur *Section) (*Section, error) {
	if len(l.stack) > MaxIncludeDepth {
		return nil, fmt.Errorf("%w: %s: include depth above %d", ErrInclude, name, MaxIncludeDepth)
	}
	l.stack = append(l.stack, name)
	defer func() { l.stack = l.stack[:len(l.stack)-1] }()
	l.cfg.Files = append(l.cfg.Files, name)
	f, err := Parse(bytes.NewReader(data), name)
	if err != nil {
		return nil, err
	}
	for _, it := range f.Items {
		switch {
		case it.Header != nil:
			s, err := l.header(it.Header, name, it.Line)
			if err != nil {
				return nil, err
			}
			cur = s
		case it.Var != nil:
			if cur == nil {
				return nil, posErr(name, it.Line, ErrSyntax, "no section for %q", it.Var.Name)
			}
			addVar(cur, *it.Var)
		case it.Directive != nil:
			if err := l.directive(it.Directive, name, it.Line, cur); err != nil {
				return nil, err
			}
		}
	}
	return cur, nil
}

func (l *loader) header(h *Header, file string, line int) (*Section, error) {
	if h.Append {
		s := l.find(h.Name)
		if s == nil {
			return nil, posErr(file, line, ErrInherit, "[%s](+) but no earlier [%s]", h.Name, h.Name)
		}
		return s, nil
	}
	s := &Section{Name: h.Name, Template: h.Template, Inherits: h.Inherits, File: file, Line: line}
	for _, b := range h.Inherits {
		base := l.find(b)
		if base == nil {
			return nil, posErr(file, line, ErrInherit, "[%s] inherits from %q, which is not defined above", h.Name, b)
		}
		for _, v := range base.Vars {
			if v.From == "" {
				v.From = base.Name
			}
			s.Vars = append(s.Vars, v)
		}
	}
	l.cfg.Sections = append(l.cfg.Sections, s)
	return s, nil
}

func addVar(s *Section, v Var) {
	if v.Op == OpAppend {
		for i := len(s.Vars) - 1; i >= 0; i-- {
			if strings.EqualFold(s.Vars[i].Name, v.Name) {
				s.Vars[i].Value += v.Value
				return
			}
		}
		v.Op = OpSet
	}
	s.Vars = append(s.Vars, v)
}

func (l *loader) directive(d *Directive, file string, line int, cur *Section) error {
	switch d.Name {
	case "include", "tryinclude":
	case "exec", "tryexec":
		l.warn(file, line, "#%s is not supported; ignored", d.Name)
		return nil
	default:
		l.warn(file, line, "unknown directive #%s; ignored", d.Name)
		return nil
	}
	try := d.Name == "tryinclude"
	p := d.Arg
	if path.IsAbs(p) {
		p = strings.TrimPrefix(path.Clean(p), "/")
	} else {
		p = path.Join(l.dir, p)
	}
	if !fs.ValidPath(p) {
		return posErr(file, line, ErrInclude, "#%s %q: path leaves the config tree", d.Name, d.Arg)
	}
	names := []string{p}
	if strings.ContainsAny(p, "*?[") {
		m, err := fs.Glob(l.fsys, p)
		if err != nil {
			return posErr(file, line, ErrInclude, "#%s %q: %v", d.Name, d.Arg, err)
		}
		if len(m) == 0 {
			if try {
				return nil
			}
			return posErr(file, line, ErrInclude, "#include %q matches no file", d.Arg)
		}
		names = m
	}
	for _, n := range names {
		if slices.Contains(l.stack, n) {
			return posErr(file, line, ErrInclude, "#%s %q: include loop", d.Name, n)
		}
		if len(l.cfg.Files) >= MaxIncludedFiles {
			return posErr(file, line, ErrInclude, "#%s %q: more than %d files included in all", d.Name, n, MaxIncludedFiles)
		}
		if fi, err := fs.Stat(l.fsys, n); err == nil && l.bytes+fi.Size() > MaxIncludedBytes {
			return posErr(file, line, ErrInclude, "#%s %q: more than %d bytes included in all", d.Name, n, MaxIncludedBytes)
		}
		data, err := fs.ReadFile(l.fsys, n)
		if err != nil {
			if try && errors.Is(err, fs.ErrNotExist) {
				continue
			}
			return &PosError{File: file, Line: line, Msg: fmt.Sprintf("#%s %q: %v", d.Name, d.Arg, err), Err: errors.Join(ErrInclude, err)}
		}
		if l.bytes += int64(len(data)); l.bytes > MaxIncludedBytes {
			return posErr(file, line, ErrInclude, "#%s %q: more than %d bytes included in all", d.Name, n, MaxIncludedBytes)
		}
		if _, err := l.load(n, data, cur); err != nil {
			if errors.Is(err, ErrInclude) && !isPos(err) {
				return posErr(file, line, ErrInclude, "%v", err)
			}
			return err
		}
	}
	return nil
}

func isPos(err error) bool {
	var pe *PosError
	return errors.As(err, &pe)
}
