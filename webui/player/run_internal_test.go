package player

import (
	"context"
	"errors"
	"net/http/httptest"
	"testing"
	"time"
)

// TestRunWaitsForEnteredListener: a listener that entered before Run's ctx
// ended (its websocket still upgrading) is waited for by Run; one after
// is refused.
func TestRunWaitsForEnteredListener(t *testing.T) {
	h := New(Options{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx) }()
	r := httptest.NewRequest("GET", "/ws/listen", nil)
	if err := h.enter(r); err != nil {
		t.Fatal(err)
	}
	cancel()
	select {
	case err := <-done:
		t.Fatalf("Run returned (%v) while a listener that entered still runs", err)
	case <-time.After(50 * time.Millisecond):
	}
	if err := h.enter(r); !errors.Is(err, ErrClosed) {
		t.Errorf("enter after the end: %v, want ErrClosed", err)
	}
	h.wg.Done()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
}
