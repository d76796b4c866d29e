// Package asteriskconf reads Asterisk's configuration syntax (main/config.c):
// comments, [sections] with (!) templates and (tmpl) inheritance, "=" / "=>" /
// "+=" variables and #include / #tryinclude. Parse is pure over an io.Reader;
// Load resolves includes through an fs.FS. The manager.conf model is built on
// top of the loaded Config (see manager.go).
package asteriskconf

import (
	"bufio"
	"fmt"
	"io"
	"strings"
)

// MaxLineLength bounds one physical line; longer lines are a syntax error.
const MaxLineLength = 64 << 10

// Op is the assignment operator of a variable line.
type Op string

const (
	OpSet    Op = "="
	OpObject Op = "=>"
	OpAppend Op = "+="
)

// File is the syntax tree of one file, in source order.
type File struct {
	Name  string
	Items []Item
}

// Item is one meaningful line: a section header, a variable, a directive, or a
// comment-only line. Comment holds the comment text found on the line (without
// the ';' markers), also for the other kinds.
type Item struct {
	Line      int
	Comment   string     `json:",omitempty"`
	Header    *Header    `json:",omitempty"`
	Var       *Var       `json:",omitempty"`
	Directive *Directive `json:",omitempty"`
}

// Header is a "[name]" or "[name](options)" line.
type Header struct {
	Name     string
	Template bool     `json:",omitempty"` // (!)
	Append   bool     `json:",omitempty"` // (+)
	Inherits []string `json:",omitempty"` // (a,b): names of sections to copy first
}

// Var is a "name = value", "name => value" or "name += value" line.
type Var struct {
	Name  string
	Value string
	Op    Op
	File  string `json:",omitempty"`
	Line  int    `json:",omitempty"`
	From  string `json:",omitempty"` // set on expanded sections: template it was inherited from
}

// Directive is a "#include", "#tryinclude", "#exec" or unknown "#word" line.
type Directive struct {
	Name string // lower case, without '#'
	Arg  string // quotes or <> removed
}

// Parse reads one file's syntax. name is used in error messages only.
func Parse(r io.Reader, name string) (*File, error) {
	f := &File{Name: name}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), MaxLineLength)
	depth := 0 // nesting of ;-- --; block comments
	lineno := 0
	var text, comment strings.Builder
	for sc.Scan() {
		lineno++
		text.Reset()
		comment.Reset()
		depth = stripComments(sc.Text(), depth, &text, &comment)
		body := strings.TrimSpace(text.String())
		cmt := strings.TrimSpace(comment.String())
		if body == "" {
			if cmt != "" {
				f.Items = append(f.Items, Item{Line: lineno, Comment: cmt})
			}
			continue
		}
		it, err := parseLine(body, name, lineno)
		if err != nil {
			return nil, err
		}
		it.Comment = cmt
		f.Items = append(f.Items, it)
	}
	if err := sc.Err(); err != nil {
		if err == bufio.ErrTooLong {
			return nil, posErr(name, lineno+1, ErrSyntax, "line longer than %d bytes", MaxLineLength)
		}
		return nil, fmt.Errorf("asteriskconf: read %s: %w", name, err)
	}
	return f, nil
}

// stripComments splits one physical line into text and comment, handling
// "\;" escapes and nested ";-- ... --;" blocks. It returns the new depth.
func stripComments(line string, depth int, text, comment *strings.Builder) int {
	i := 0
	for i < len(line) {
		if depth > 0 {
			switch {
			case strings.HasPrefix(line[i:], "--;"):
				depth--
				i += 3
			case strings.HasPrefix(line[i:], ";--"):
				depth++
				i += 3
			default:
				comment.WriteByte(line[i])
				i++
			}
			continue
		}
		c := line[i]
		if c != ';' {
			text.WriteByte(c)
			i++
			continue
		}
		if s := text.String(); len(s) > 0 && s[len(s)-1] == '\\' {
			// "\;" is a literal semicolon: drop the backslash.
			t := s[:len(s)-1] + ";"
			text.Reset()
			text.WriteString(t)
			i++
			continue
		}
		if strings.HasPrefix(line[i:], ";--") {
			depth++
			i += 3
			continue
		}
		comment.WriteString(line[i+1:])
		break
	}
	return depth
}

func parseLine(s, file string, line int) (Item, error) {
	it := Item{Line: line}
	switch s[0] {
	case '[':
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return it, posErr(file, line, ErrSyntax, "no closing ']' in %q", s)
		}
		h := &Header{Name: strings.TrimSpace(s[1:end])}
		if h.Name == "" {
			return it, posErr(file, line, ErrSyntax, "empty section name")
		}
		rest := strings.TrimSpace(s[end+1:])
		if rest != "" {
			if rest[0] != '(' {
				return it, posErr(file, line, ErrSyntax, "unexpected %q after section name", rest)
			}
			cl := strings.IndexByte(rest, ')')
			if cl < 0 {
				return it, posErr(file, line, ErrSyntax, "no closing ')' in %q", s)
			}
			if tail := strings.TrimSpace(rest[cl+1:]); tail != "" {
				return it, posErr(file, line, ErrSyntax, "unexpected %q after section options", tail)
			}
			for _, o := range strings.Split(rest[1:cl], ",") {
				switch o = strings.TrimSpace(o); o {
				case "!":
					h.Template = true
				case "+":
					h.Append = true
				case "":
				default:
					h.Inherits = append(h.Inherits, o)
				}
			}
		}
		it.Header = h
	case '#':
		word, arg, _ := strings.Cut(s[1:], " ")
		if i := strings.IndexByte(word, '\t'); i >= 0 {
			word, arg = word[:i], word[i+1:]+" "+arg
		}
		d := &Directive{Name: strings.ToLower(word), Arg: unquote(strings.TrimSpace(arg))}
		if (d.Name == "include" || d.Name == "tryinclude" || d.Name == "exec" || d.Name == "tryexec") && d.Arg == "" {
			return it, posErr(file, line, ErrSyntax, "directive #%s needs an argument (filename)", d.Name)
		}
		it.Directive = d
	default:
		eq := strings.IndexByte(s, '=')
		if eq < 0 {
			return it, posErr(file, line, ErrSyntax, "no '=' (equal sign) in %q", s)
		}
		v := &Var{Op: OpSet, File: file, Line: line}
		name, value := s[:eq], s[eq+1:]
		if strings.HasSuffix(name, "+") {
			v.Op, name = OpAppend, name[:len(name)-1]
		} else if strings.HasPrefix(value, ">") {
			v.Op, value = OpObject, value[1:]
		}
		v.Name, v.Value = strings.TrimSpace(name), strings.TrimSpace(value)
		if v.Name == "" {
			return it, posErr(file, line, ErrSyntax, "variable without a name in %q", s)
		}
		it.Var = v
	}
	return it, nil
}

func unquote(s string) string {
	if len(s) >= 2 && (s[0] == '"' && s[len(s)-1] == '"' || s[0] == '<' && s[len(s)-1] == '>') {
		return s[1 : len(s)-1]
	}
	return s
}
