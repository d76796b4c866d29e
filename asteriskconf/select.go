package asteriskconf

import (
	"fmt"
	"net/netip"
	"strings"
)

// Need says what the agent's AMI login requires.
type Need struct {
	Name string     // configured user; when set, only this user is considered
	Addr netip.Addr // the agent's source address as Asterisk sees it
	Read Class      // every class here must be readable
	// Write lists alternatives per action: each entry must share at least one
	// class with the user's write set (an action runs when any class matches).
	Write []Class
}

// AgentNeed is what the agent uses: call events (plus system for
// FullyBooted/Shutdown), CoreShowChannels (system|reporting) and Getvar
// (call|reporting).
func AgentNeed(name string, addr netip.Addr) Need {
	return Need{Name: name, Addr: addr, Read: ClassCall | ClassSystem,
		Write: []Class{ClassSystem | ClassReporting, ClassCall | ClassReporting}}
}

// Rejection says why one user was not usable.
type Rejection struct {
	User   string
	Reason string
}

// NoUserError lists every user and why it could not be used.
type NoUserError struct {
	Need     Need
	Rejected []Rejection
}

func (e *NoUserError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%v for %s", ErrNoUser, e.Need.Addr)
	if len(e.Rejected) == 0 {
		b.WriteString(": manager.conf defines no users")
	}
	for _, r := range e.Rejected {
		fmt.Fprintf(&b, "; [%s] %s", r.User, r.Reason)
	}
	return b.String()
}

func (e *NoUserError) Unwrap() error { return ErrNoUser }

// Usable returns "" when u fits need, else the reason it does not.
func (u *User) Usable(need Need) string {
	var why []string
	if !u.HasSecret || u.Secret == "" {
		why = append(why, "has no secret")
	}
	if ok, reason := u.ACL.Allows(need.Addr); !ok {
		why = append(why, reason)
	}
	if miss := need.Read &^ u.Read; miss != 0 {
		why = append(why, fmt.Sprintf("read lacks %s", miss))
	}
	for _, w := range need.Write {
		if u.Write&w == 0 {
			why = append(why, fmt.Sprintf("write lacks any of %s", w))
		}
	}
	return strings.Join(why, ", ")
}

// SelectUser picks the agent's AMI login: need.Name when set, else the first
// user (file order) that fits. When none fits, the error is a *NoUserError.
func (m *Manager) SelectUser(need Need) (*User, error) {
	e := &NoUserError{Need: need}
	if !m.General.Enabled {
		e.Rejected = append(e.Rejected, Rejection{User: "general", Reason: "AMI is not enabled (enabled = no)"})
		return nil, e
	}
	for _, u := range m.Users {
		if need.Name != "" && !strings.EqualFold(u.Name, need.Name) {
			continue
		}
		reason := u.Usable(need)
		if reason == "" {
			return u, nil
		}
		e.Rejected = append(e.Rejected, Rejection{User: u.Name, Reason: reason})
	}
	if need.Name != "" && len(e.Rejected) == 0 {
		e.Rejected = append(e.Rejected, Rejection{User: need.Name, Reason: "not defined in manager.conf"})
	}
	return nil, e
}
