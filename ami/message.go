// Package ami speaks the Asterisk Manager Interface: a framing parser
// (Parser/Reader), a connection with ActionID multiplexing (Conn), a
// reconnecting client with event subscriptions and resync (Client), and a
// channel tracker keyed by Uniqueid (Tracker).
package ami

import (
	"strings"
)

var crlf = strings.NewReplacer("\r", " ", "\n", " ")

// Field is one "Key: Value" line. Order and repeats are kept.
type Field struct {
	Key, Value string
}

// Kind says what a message is, from its first field.
type Kind uint8

const (
	KindUnknown Kind = iota
	KindBanner
	KindResponse
	KindEvent
	KindAction
)

// Message is one AMI packet.
type Message struct {
	Fields []Field
	// Body holds the free text of a legacy "Response: Follows" packet,
	// without the closing "--END COMMAND--".
	Body string
	// Banner is set (and Fields empty) for the server's greeting line.
	Banner string
}

// Lookup returns the first value of key (case-insensitive).
func (m *Message) Lookup(key string) (string, bool) {
	for i := range m.Fields {
		if strings.EqualFold(m.Fields[i].Key, key) {
			return m.Fields[i].Value, true
		}
	}
	return "", false
}

// Get returns the first value of key or "".
func (m *Message) Get(key string) string {
	v, _ := m.Lookup(key)
	return v
}

// Values returns every value of key in order (Output, Variable, ChanVariable).
func (m *Message) Values(key string) []string {
	var out []string
	for i := range m.Fields {
		if strings.EqualFold(m.Fields[i].Key, key) {
			out = append(out, m.Fields[i].Value)
		}
	}
	return out
}

// Kind classifies the message by its first field.
func (m *Message) Kind() Kind {
	if m.Banner != "" {
		return KindBanner
	}
	if len(m.Fields) == 0 {
		return KindUnknown
	}
	switch k := m.Fields[0].Key; {
	case strings.EqualFold(k, "Response"):
		return KindResponse
	case strings.EqualFold(k, "Event"):
		return KindEvent
	case strings.EqualFold(k, "Action"):
		return KindAction
	}
	return KindUnknown
}

// Event returns the Event header ("" for responses).
func (m *Message) Event() string { return m.Get("Event") }

// ActionID returns the ActionID header.
func (m *Message) ActionID() string { return m.Get("ActionID") }

// AppendWire appends the packet as Asterisk writes it: "Key: Value" CRLF per
// field and a closing CRLF.
func (m *Message) AppendWire(b []byte) []byte {
	for _, f := range m.Fields {
		b = append(b, f.Key...)
		b = append(b, ':', ' ')
		b = append(b, f.Value...)
		b = append(b, '\r', '\n')
	}
	return append(b, '\r', '\n')
}

// String renders the packet in wire form.
func (m *Message) String() string {
	if m.Banner != "" {
		return m.Banner
	}
	return string(m.AppendWire(nil))
}

// Action is a request: its name and fields other than Action/ActionID.
type Action struct {
	Name   string
	Fields []Field
}

// NewAction builds an Action from key/value pairs.
func NewAction(name string, kv ...string) Action {
	a := Action{Name: name}
	for i := 0; i+1 < len(kv); i += 2 {
		a.Fields = append(a.Fields, Field{kv[i], kv[i+1]})
	}
	return a
}

func (a Action) wire(id string) []byte {
	b := make([]byte, 0, 64+len(a.Fields)*32)
	b = append(b, "Action: "...)
	b = append(b, a.Name...)
	b = append(b, "\r\nActionID: "...)
	b = append(b, id...)
	b = append(b, '\r', '\n')
	m := Message{Fields: make([]Field, len(a.Fields))}
	for i, f := range a.Fields {
		// CR/LF inside a value would end the line and inject headers.
		m.Fields[i] = Field{crlf.Replace(f.Key), crlf.Replace(f.Value)}
	}
	return m.AppendWire(b)
}

// Fields0 returns the first field's value ("" when none): handy in logs.
func (a Action) Fields0() string {
	if len(a.Fields) == 0 {
		return ""
	}
	return a.Fields[0].Value
}
