package webui

import "testing"

func TestNewRegistersRoutes(t *testing.T) {
	if New(Options{}) == nil {
		t.Fatal("nil handler")
	}
}
