package defaults

import (
	"testing"
	"time"
)

func TestPositive(t *testing.T) {
	for _, tc := range []struct {
		in, want time.Duration
	}{
		{0, time.Second},
		{-1, time.Second},
		{2 * time.Second, 2 * time.Second},
	} {
		got := tc.in
		Positive(&got, time.Second)
		if got != tc.want {
			t.Errorf("Positive(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestUnset(t *testing.T) {
	for _, tc := range []struct {
		in, want time.Duration
	}{
		{0, time.Second},
		{-1, -1}, // a negative value keeps its meaning
		{3, 3},
	} {
		got := tc.in
		Unset(&got, time.Second)
		if got != tc.want {
			t.Errorf("Unset(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
	s := ""
	Unset(&s, "x")
	if s != "x" {
		t.Errorf(`Unset("") = %q, want "x"`, s)
	}
	s = "y"
	Unset(&s, "x")
	if s != "y" {
		t.Errorf(`Unset("y") = %q, want "y"`, s)
	}
}
