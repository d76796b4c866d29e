package eol

import "testing"

func TestEmptyLines(t *testing.T) {
	tests := []struct {
		in   string
		want int
	}{
		{"", 0},
		{"INVITE", 0},
		{"\n", 1},
		{"\r\n", 2},
		{"\r\n\r\n\nEvent: x\r\n", 5},
		{"\r", 0},        // a CR waits for its LF
		{"\r\n\r", 2},    // likewise after an empty line
		{"\rEvent", 0},   // a lone CR starts a line
		{"\n\rx\r\n", 1}, // and stops the count
		{"a\r\n\r\n", 0}, // only at the start
	}
	for _, tt := range tests {
		if got := EmptyLines([]byte(tt.in)); got != tt.want {
			t.Errorf("EmptyLines(%q) = %d, want %d", tt.in, got, tt.want)
		}
	}
}
