package webui_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestNoAgentImports: the web front end depends on the sniffer and its own
// packages only; the daemon (agent/...) wires implementations into the
// interfaces webui declares, never the other way round.
func TestNoAgentImports(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go command not in PATH")
	}
	out, err := exec.Command(goBin, "list", "-deps", "pbx-agent/webui/...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 10 {
		t.Fatalf("go list -deps listed %d packages: %q", len(deps), deps)
	}
	for _, p := range deps {
		if p == "pbx-agent/agent" || strings.HasPrefix(p, "pbx-agent/agent/") {
			t.Errorf("webui depends on %s", p)
		}
	}
}
