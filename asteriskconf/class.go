package asteriskconf

import (
	"encoding/json"
	"strings"
)

// Class is a set of manager read/write classes (perms[] in main/manager.c).
type Class uint32

// Manager classes.
const (
	ClassSystem Class = 1 << iota
	ClassCall
	ClassLog
	ClassVerbose
	ClassCommand
	ClassAgent
	ClassUser
	ClassConfig
	ClassDTMF
	ClassReporting
	ClassCDR
	ClassDialplan
	ClassOriginate
	ClassAGI
	ClassCC
	ClassAOC
	ClassTest
	ClassSecurity
	ClassMessage

	ClassNone Class = 0
	ClassAll  Class = 1<<iota - 1
)

var classNames = []string{"system", "call", "log", "verbose", "command", "agent", "user",
	"config", "dtmf", "reporting", "cdr", "dialplan", "originate", "agi", "cc", "aoc", "test",
	"security", "message"}

// ParseClass reads a comma list of class names ("all" and "none" included),
// case-insensitively. Unknown words are returned separately (Asterisk ignores them).
func ParseClass(s string) (Class, []string) {
	var c Class
	var unknown []string
	for _, w := range strings.Split(s, ",") {
		w = strings.TrimSpace(w)
		switch {
		case w == "":
		case strings.EqualFold(w, "all"):
			c |= ClassAll
		case strings.EqualFold(w, "none"):
		default:
			found := false
			for i, n := range classNames {
				if strings.EqualFold(w, n) {
					c |= 1 << i
					found = true
				}
			}
			if !found {
				unknown = append(unknown, w)
			}
		}
	}
	return c, unknown
}

// Names lists the classes in Asterisk's order; ClassAll is ["all"].
func (c Class) Names() []string {
	if c&ClassAll == ClassAll {
		return []string{"all"}
	}
	out := []string{}
	for i, n := range classNames {
		if c&(1<<i) != 0 {
			out = append(out, n)
		}
	}
	return out
}

func (c Class) String() string {
	if c == 0 {
		return "none"
	}
	return strings.Join(c.Names(), ",")
}

// MarshalJSON renders the class names.
func (c Class) MarshalJSON() ([]byte, error) { return json.Marshal(c.Names()) }
