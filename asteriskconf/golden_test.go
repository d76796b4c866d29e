package asteriskconf

import (
	"encoding/json"
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"pbx-agent/internal/testkit"
	"pbx-agent/sniffer/fixture"
)

var update = flag.Bool("update", false, "rewrite testdata/conf/*.golden")

// probes are the addresses every user's ACL is evaluated against in goldens.
var probes = []string{"127.0.0.1", "10.1.2.3", "192.168.1.5", "192.168.7.7", "8.8.8.8", "::1", "2001:db8::1"}

type golden struct {
	Error     string                     `json:",omitempty"`
	Config    *Config                    `json:",omitempty"`
	Manager   *Manager                   `json:",omitempty"`
	Allows    map[string]map[string]bool `json:",omitempty"`
	Selected  string                     `json:",omitempty"`
	SelectErr string                     `json:",omitempty"`
}

func buildGolden(dir, name string) golden {
	fsys := os.DirFS(dir)
	var g golden
	cfg, err := Load(fsys, name)
	if err != nil {
		g.Error = err.Error()
		return g
	}
	g.Config = cfg
	acls, err := Load(fsys, "inc/acl.conf")
	if err != nil {
		g.Error = err.Error()
		return g
	}
	m, err := NewManager(cfg, acls)
	if err != nil {
		g.Error = err.Error()
		return g
	}
	g.Manager = m
	g.Allows = map[string]map[string]bool{}
	for _, u := range m.Users {
		g.Allows[u.Name] = map[string]bool{}
		for _, p := range probes {
			ok, _ := u.ACL.Allows(netip.MustParseAddr(p))
			g.Allows[u.Name][p] = ok
		}
	}
	u, err := m.SelectUser(AgentNeed("", netip.MustParseAddr("127.0.0.1")))
	if err != nil {
		g.SelectErr = err.Error()
	} else {
		g.Selected = u.Name
	}
	return g
}

func TestGolden(t *testing.T) {
	dir := fixture.Repo(t, "testdata", "conf")
	files, err := filepath.Glob(filepath.Join(dir, "*.conf"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata: %v", err)
	}
	for _, f := range files {
		name := filepath.Base(f)
		t.Run(name, func(t *testing.T) {
			g := buildGolden(dir, name)
			if strings.HasPrefix(name, "bad-") != (g.Error != "") {
				t.Errorf("error = %q; files named bad-* must fail, others must load", g.Error)
			}
			if g.Error != "" && !strings.HasPrefix(g.Error, name+":") && !strings.Contains(g.Error, ".conf:") {
				t.Errorf("error %q lacks file:line", g.Error)
			}
			got, err := json.MarshalIndent(g, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			testkit.Golden(t, strings.TrimSuffix(f, ".conf")+".golden", got, *update)
		})
	}
}
