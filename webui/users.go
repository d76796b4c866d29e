package webui

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"pbx-agent/asteriskconf"
)

// Rights are what a user may do, named after VoIPmonitor's custom-login
// vocabulary (seed 001: can_cdr, can_play_audio, …).
type Rights uint32

// The rights the web APIs check.
const (
	CanCDR                 Rights = 1 << iota // list CDRs (sql.php, getVoipCalls, listCdrIds, reportSummary, SIP history)
	CanPlayAudio                              // play recordings
	CanDownloadAudio                          // getVoiceRecording
	CanListenActiveCall                       // live listening
	CanPCAP                                   // pcap.php, getPCAP
	CanActiveCalls                            // listActiveCalls
	CanHandleActiveCall                       // handleActiveCall (pause/unpause); pbx-agent's own right
	CanCDRShareLocalPublic                    // getShareURL
	IsAdmin                                   // everything
	CanShowFax                                // getFax: the pages of fax calls

	AllRights = 1<<iota - 1
)

var rightNames = []string{"can_cdr", "can_play_audio", "can_download_audio", "can_listen_active_call",
	"can_pcap", "can_activecalls", "can_handle_active_call", "can_cdr_share_local_public", "is_admin",
	"can_show_fax"}

// Names lists the rights by their VoIPmonitor names.
func (r Rights) Names() []string {
	var out []string
	for i, n := range rightNames {
		if r&(1<<i) != 0 {
			out = append(out, n)
		}
	}
	return out
}

// Has reports whether r includes every right of need (admins have all).
func (r Rights) Has(need Rights) bool { return r&IsAdmin != 0 || r&need == need }

// RightsFromClasses maps manager.conf read/write classes to rights
// (DESIGN.md "Auth"): read call or cdr → list CDRs, listen, download, pcap,
// active calls, share, fax pages; write call → handleActiveCall; read and
// write "all" → admin.
func RightsFromClasses(read, write asteriskconf.Class) Rights {
	var r Rights
	if read&(asteriskconf.ClassCall|asteriskconf.ClassCDR) != 0 {
		r |= CanCDR | CanPlayAudio | CanDownloadAudio | CanListenActiveCall | CanPCAP | CanActiveCalls | CanCDRShareLocalPublic | CanShowFax
	}
	if write&asteriskconf.ClassCall != 0 {
		r |= CanHandleActiveCall
	}
	if read&asteriskconf.ClassAll == asteriskconf.ClassAll && write&asteriskconf.ClassAll == asteriskconf.ClassAll {
		r |= IsAdmin
	}
	return r
}

// User is one web API user.
type User struct {
	Name   string
	Secret string
	Rights Rights
	// ACL is the user's permit/deny (nil = any address).
	ACL *asteriskconf.ACL
	// Sensors restricts the CDRs the user sees to these id_sensor values
	// (enable_sensors); nil = all.
	Sensors []int
	// Source says where the user was defined ("manager.conf:12").
	Source string
}

// Allows reports whether the user may connect from addr.
func (u *User) Allows(addr netip.Addr) bool {
	if u.ACL == nil {
		return true
	}
	if !addr.IsValid() {
		return false
	}
	ok, _ := u.ACL.Allows(addr)
	return ok
}

// UsersFromManager turns manager.conf users into web users. Users without a
// secret cannot log in and are left out.
func UsersFromManager(m *asteriskconf.Manager) []User {
	if m == nil {
		return nil
	}
	var out []User
	for _, mu := range m.Users {
		if !mu.HasSecret || mu.Secret == "" {
			continue
		}
		acl := mu.ACL
		out = append(out, User{
			Name: mu.Name, Secret: mu.Secret, Rights: RightsFromClasses(mu.Read, mu.Write),
			ACL: &acl, Source: fmt.Sprintf("%s:%d", mu.File, mu.Line),
		})
	}
	return out
}

// usersFileKeys are the keys a users_file section may hold; any other is an
// error (a misspelt enable_sensors must not silently widen a user's view).
var usersFileKeys = map[string]bool{"secret": true, "read": true, "write": true, "permit": true,
	"deny": true, "acl": true, "enable_sensors": true, "can_show_fax": true}

// LoadUsersFile reads the agent's users_file. It uses manager.conf's syntax
// (a [name] section per user with secret, read, write, permit, deny, acl)
// plus enable_sensors = 1,2 (the id_sensor values whose calls, CDRs, files
// and live audio the user may reach; empty = none) and can_show_fax = yes|no
// (fax pages; by default granted with read call or cdr). Unknown keys are
// errors.
func LoadUsersFile(path string) ([]User, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("webui: users_file: %w", err)
	}
	cfg, err := asteriskconf.Load(os.DirFS(filepath.Dir(path)), filepath.Base(path))
	if err != nil {
		return nil, fmt.Errorf("webui: users_file %s: %w", path, err)
	}
	sensors := map[string][]int{}
	fax := map[string]bool{}
	for _, s := range cfg.Sections {
		for _, v := range s.Vars {
			name := strings.ToLower(v.Name)
			if !usersFileKeys[name] {
				return nil, fmt.Errorf("%w: users_file %s:%d: unknown key %q in [%s] (keys: secret, read, write, permit, deny, acl, enable_sensors, can_show_fax)",
					ErrUsersFile, v.File, v.Line, v.Name, s.Name)
			}
			if name == "can_show_fax" {
				ok, err := asteriskconf.ParseBool(v)
				if err != nil {
					return nil, fmt.Errorf("%w: users_file: %v", ErrUsersFile, err)
				}
				fax[strings.ToLower(s.Name)] = ok
			}
			if name != "enable_sensors" {
				continue
			}
			ids, err := parseSensorList(v.Value)
			if err != nil {
				return nil, fmt.Errorf("%w: users_file %s:%d: enable_sensors = %q: %v", ErrUsersFile, v.File, v.Line, v.Value, err)
			}
			sensors[strings.ToLower(s.Name)] = ids
		}
	}
	m, err := asteriskconf.NewManager(cfg, nil)
	if err != nil {
		return nil, fmt.Errorf("webui: users_file %s: %w", path, err)
	}
	users := UsersFromManager(m)
	for i := range users {
		if ids, ok := sensors[strings.ToLower(users[i].Name)]; ok {
			users[i].Sensors = ids
		}
		if show, ok := fax[strings.ToLower(users[i].Name)]; ok {
			users[i].Rights &^= CanShowFax
			if show {
				users[i].Rights |= CanShowFax
			}
		}
	}
	return users, nil
}

// parseSensorList reads "1, 2,3" (empty = no sensor).
func parseSensorList(v string) ([]int, error) {
	out := []int{}
	for _, f := range strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' }) {
		n, err := strconv.Atoi(f)
		if err != nil || n < 0 || n > 65535 {
			return nil, fmt.Errorf("%q is not a sensor id (0-65535)", f)
		}
		out = append(out, n)
	}
	return out, nil
}

// SeesSensor reports whether the user may reach sensor id's calls, CDRs,
// files and live audio (enable_sensors); an unrestricted user sees all, a
// restricted one never sees an agent without id_sensor (id < 0).
func (u *User) SeesSensor(id int) bool {
	return u == nil || u.Sensors == nil || slices.Contains(u.Sensors, id)
}

// LoadManagerUsers reads Asterisk's manager.conf (and acl.conf beside it).
func LoadManagerUsers(path string) ([]User, error) {
	m, err := asteriskconf.LoadManager(os.DirFS(filepath.Dir(path)), filepath.Base(path), "acl.conf")
	if err != nil {
		return nil, fmt.Errorf("webui: %s: %w", path, err)
	}
	return UsersFromManager(m), nil
}

// directory is an immutable set of users by lower-case name; later lists
// override earlier ones.
type directory map[string]*User

func newDirectory(lists ...[]User) directory {
	d := directory{}
	for _, l := range lists {
		for i := range l {
			u := l[i]
			d[strings.ToLower(u.Name)] = &u
		}
	}
	return d
}
