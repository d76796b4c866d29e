// Package parity compares what the agent writes to MySQL with what the real
// VoIPmonitor sniffer wrote for the same captures
// (../shared/fixtures/voipmonitor-ref): it replays a capture into a scratch
// database, reads the rows back and scores them column by column with the
// tolerances of issue 12. It is test code only (nothing imports it):
// `make parity` runs it and writes testdata/parity/REPORT.md.
package parity

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Capture is one entry of voipmonitor-ref/index.json: a capture file and the
// options VoIPmonitor read it with.
type Capture struct {
	Capture     string         `json:"capture"` // "shared/fixtures/public/aaa.pcap"
	JSON        string         `json:"json"`    // the reference rows file
	SIPPort     string         `json:"sipport"` // "5060,5070"
	IPv6        string         `json:"ipv6"`    // "yes" or "no"
	ExtraConfig string         `json:"extra_config"`
	Rows        map[string]int `json:"rows"`
}

// Name is the capture's file name.
func (c Capture) Name() string { return filepath.Base(c.Capture) }

// IPv6Mode reports whether VoIPmonitor read the capture with ipv6 = yes.
func (c Capture) IPv6Mode() bool { return c.IPv6 == "yes" }

// Path is the capture's location given the directory that holds shared/.
func (c Capture) Path(sharedParent string) string {
	return filepath.Join(sharedParent, filepath.FromSlash(c.Capture))
}

// LoadIndex reads index.json in the reference directory.
func LoadIndex(refDir string) ([]Capture, error) {
	b, err := os.ReadFile(filepath.Join(refDir, "index.json"))
	if err != nil {
		return nil, fmt.Errorf("parity: %w", err)
	}
	var out []Capture
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, fmt.Errorf("%w: index.json: %w", ErrRef, err)
	}
	return out, nil
}

// Row is one database row: column name → text value, nil for NULL. Lookup
// texts are under "_joined.<name>" and IP columns in text form under
// "_ip_text.<column>", as in the reference files.
type Row map[string]any

// Tables holds rows by table name.
type Tables map[string][]Row

// LoadRows reads a reference file (JSON Lines, one object per row, "_table"
// naming the table). Numbers keep their text; nested objects are flattened
// to "object.key".
func LoadRows(path string) (Tables, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("parity: %w", err)
	}
	defer f.Close()
	out := Tables{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	for n := 1; sc.Scan(); n++ {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		dec := json.NewDecoder(bytes.NewReader(line))
		dec.UseNumber()
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			return nil, fmt.Errorf("%w: %s:%d: %w", ErrRef, path, n, err)
		}
		table, _ := m["_table"].(string)
		if table == "" {
			return nil, fmt.Errorf("%w: %s:%d: no _table", ErrRef, path, n)
		}
		r := Row{}
		flatten(r, "", m)
		delete(r, "_table")
		out[table] = append(out[table], r)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("parity: %s: %w", path, err)
	}
	return out, nil
}

func flatten(r Row, prefix string, m map[string]any) {
	for k, v := range m {
		switch v := v.(type) {
		case map[string]any:
			flatten(r, prefix+k+".", v)
		case json.Number:
			r[prefix+k] = string(v)
		case string:
			r[prefix+k] = v
		case bool:
			r[prefix+k] = fmt.Sprint(v)
		case nil:
			r[prefix+k] = nil
		default:
			r[prefix+k] = strings.TrimSpace(fmt.Sprint(v))
		}
	}
}
