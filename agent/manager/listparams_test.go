package manager

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// quoted returns n JSON strings f(i), comma-separated.
func quoted(n int, f func(i int) string) string {
	parts := make([]string, n)
	for i := range parts {
		parts[i] = `"` + f(i) + `"`
	}
	return strings.Join(parts, ",")
}

// TestListParamsTermsBounded: listcalls / listregisters test every row
// against each filter and state. A 58 kB request repeating one filter 4,501
// times cost 3.2 s of CPU on 2,000 calls (and 10 times that on 20,000) while
// holding a snapshot slot; repeats now count once and more than
// maxListTerms distinct terms are refused (32 distinct filters matching
// every one of 2,000 calls: 62 ms).
func TestListParamsTermsBounded(t *testing.T) {
	tests := []struct {
		name        string
		in          string
		wantFilters []string
		wantStates  []string
		wantErr     error
	}{
		{name: "one filter string", in: `{"filter":"Alice"}`, wantFilters: []string{"alice"}},
		{name: "repeats count once", in: `{"filter":[` + quoted(4501, func(int) string { return "192.0.2.10" }) + `]}`, wantFilters: []string{"192.0.2.10"}},
		{name: "case and blanks fold", in: `{"filter":["Bob"," bob ","BOB",""]}`, wantFilters: []string{"bob"}},
		{name: "distinct at the bound", in: `{"filter":[` + quoted(maxListTerms, func(i int) string { return fmt.Sprint("f", i) }) + `]}`,
			wantFilters: func() []string {
				var l []string
				for i := range maxListTerms {
					l = append(l, fmt.Sprint("f", i))
				}
				return l
			}()},
		{name: "distinct past the bound", in: `{"filter":[` + quoted(maxListTerms+1, func(i int) string { return fmt.Sprint("f", i) }) + `]}`, wantErr: ErrTooManyTerms},
		{name: "states repeat", in: `{"states":"` + strings.Repeat("OK,", 10000) + `Failed"}`, wantStates: []string{"ok", "failed"}},
		{name: "states past the bound", in: `{"states":"` + strings.ReplaceAll(quoted(maxListTerms+1, func(i int) string { return fmt.Sprint("s", i) }), `"`, "") + `"}`, wantErr: ErrTooManyTerms},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := parseListParams(tt.in)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if !slices.Equal(p.filters, tt.wantFilters) || !slices.Equal(p.states, tt.wantStates) {
				head := func(l []string) []string { return l[:min(3, len(l))] }
				t.Errorf("%d filters %q…, %d states %q…; want %d %q…, %d %q…", len(p.filters), head(p.filters), len(p.states), head(p.states),
					len(tt.wantFilters), head(tt.wantFilters), len(tt.wantStates), head(tt.wantStates))
			}
		})
	}

	// Over the socket: the repeated filter answers as the single one does,
	// too many distinct ones get an error reply.
	ts := startServer(t, nil)
	one := exchange(t, "tcp", ts.addr, []byte(`listcalls {"filter":["10.1.0.1"]}`+"\r\n\r\n"), false)
	many := exchange(t, "tcp", ts.addr, []byte(`listcalls {"filter":[`+quoted(4000, func(int) string { return "10.1.0.1" })+`]}`+"\r\n\r\n"), false)
	if string(one) != string(many) || !strings.Contains(string(one), "gensip-1-1@") {
		t.Errorf("repeated filter: %.200q, single: %.200q", many, one)
	}
	got := exchange(t, "tcp", ts.addr, []byte(`listregisters {"filter":[`+quoted(100, func(i int) string { return fmt.Sprint("f", i) })+`]}`+"\r\n\r\n"), false)
	if want := "error: manager: too many filter terms: more than 32 distinct filters\n"; string(got) != want {
		t.Errorf("distinct filters: %q, want %q", got, want)
	}
}
