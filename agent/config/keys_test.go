package config

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestKeyTable keeps the two halves of the key table apart and complete:
// no key both implemented and without effect, the no-effect list sorted
// (so concurrent edits merge), and every key of the sample config in one.
func TestKeyTable(t *testing.T) {
	if !slices.IsSorted(noEffectKeys) {
		t.Error("noEffectKeys is not sorted")
	}
	for i := 1; i < len(noEffectKeys); i++ {
		if noEffectKeys[i] == noEffectKeys[i-1] {
			t.Errorf("noEffectKeys lists %q twice", noEffectKeys[i])
		}
	}
	for _, k := range noEffectKeys {
		if _, ok := options[k]; ok {
			t.Errorf("%q is implemented (options) and listed as without effect (noEffectKeys): delete it from keys.go", k)
		}
	}
	for _, k := range sampleKeys(t) {
		_, impl := options[k]
		_, ign := noEffect[k]
		if !impl && !ign {
			t.Errorf("sample key %q is neither implemented nor accepted without effect", k)
		}
	}
}

// sampleKeys are the keys of testdata/voipmonitor-sample.conf, in order.
func sampleKeys(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "voipmonitor-sample.conf"))
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, line := range strings.Split(string(b), "\n") {
		k, _, ok := strings.Cut(line, "=")
		if ok && !strings.HasPrefix(line, "#") {
			keys = append(keys, strings.TrimSpace(k))
		}
	}
	return keys
}

// TestVoipmonitorSampleConf: an existing voipmonitor.conf with every option
// of VoIPmonitor's sample loads with no error, and the one warning names
// exactly the keys without effect here (issue 18 item 7).
func TestVoipmonitorSampleConf(t *testing.T) {
	c, err := Load(filepath.Join("testdata", "voipmonitor-sample.conf"), nil)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	var want []string
	for _, k := range sampleKeys(t) {
		if _, impl := options[k]; !impl && !slices.Contains(want, k) {
			want = append(want, k)
		}
	}
	w := c.NoEffectWarning()
	_, list, _ := strings.Cut(w, ": ")
	if got := strings.Split(list, ", "); !slices.Equal(got, want) {
		t.Errorf("warning lists %d keys, want %d:\n got %v\nwant %v", len(got), len(want), got, want)
	}
	// Keys the issue found refused, and what the sample sets that maps here.
	for _, k := range []string{"mysqlcompress", "sqldriver", "packetbuffer_enable", "packetbuffer_compress", "max_buffer_mem",
		"save_sdp_ipport", "threading_mod", "preprocess_rtp_threads"} {
		if !strings.Contains(w, " "+k+",") && !strings.HasSuffix(w, " "+k) {
			t.Errorf("warning does not name %s", k)
		}
	}
	if c.SensorName != "sensor1" || c.MaxPoolSizeMB != 102400 || c.ManagerPort != 5029 || strings.Join(c.Interface, ",") != "eth0" {
		t.Errorf("implemented keys not applied: name %q maxpoolsize %d managerport %d interface %v",
			c.SensorName, c.MaxPoolSizeMB, c.ManagerPort, c.Interface)
	}
}

// TestTypoStillErrors: accepting VoIPmonitor's keys does not swallow typos;
// a misspelt no-effect key is suggested too.
func TestTypoStillErrors(t *testing.T) {
	for in, want := range map[string]string{
		"packetbufer_enable = yes\n": `t.conf:1: packetbufer_enable: unknown key (did you mean "packetbuffer_enable"?)`,
		"mysqlhots = db\n":           `t.conf:1: mysqlhots: unknown key (did you mean "mysqlhost"?)`,
	} {
		_, err := Parse("t.conf", []byte(in), nil)
		if err == nil || err.Error() != want {
			t.Errorf("Parse(%q) = %v, want %s", in, err, want)
		}
	}
}

// TestFlagReplacesRepeatableKey: -interface lo replaces the file's
// interface = eth0 instead of being appended to it (issue 18 item 1).
func TestFlagReplacesRepeatableKey(t *testing.T) {
	c, err := Parse("t.conf", []byte("interface = eth0\ninterface = eth1\n"), map[string]string{"interface": "lo"})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(c.Interface, ","); got != "lo" {
		t.Errorf("interface = %q, want lo", got)
	}
}

// TestEmptyValueSets: "key =" sets the empty value (it was skipped, so
// "asterisk_manager_conf =" kept the default path).
func TestEmptyValueSets(t *testing.T) {
	c, err := Parse("t.conf", []byte("[general]\nasterisk_manager_conf =\nhttp_bind =\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.AsteriskManagerConf != "" || c.HTTPBind != "" {
		t.Errorf("asterisk_manager_conf %q, http_bind %q: want both empty", c.AsteriskManagerConf, c.HTTPBind)
	}
}
