package webui

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
)

// loginFrom posts a login for user with pass from the loopback address
// from and returns the status.
func loginFrom(t *testing.T, srvURL, from, user, pass string) int {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	c := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return d.DialContext(ctx, network, addr)
		},
		DisableKeepAlives: true,
	}}
	resp, err := c.Post(srvURL+"/php/model/sql.php?module=bypass_login&user="+user+"&pass="+pass, "text/plain", nil)
	if err != nil {
		t.Fatalf("login from %s: %v", from, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// TestThrottleFullTable: the failed-login table is bounded. Once full of
// live entries it counted nothing new, so an attacker who filled it (two
// keys per address: 50,000 addresses, an IPv6 /64 has 2^64) then guessed a
// password from a new address without limit. Now, while the table is
// full, new keys share one entry (blocked together after MaxBadLogins);
// keys in the table keep their own counts.
func TestThrottleFullTable(t *testing.T) {
	e := newHardEnv(t, testUsers(t), nil)
	e.h.throttle.mu.Lock()
	e.h.throttle.maxKeys = 40
	e.h.throttle.mu.Unlock()

	for i := range 20 { // 20 addresses × (user@address, address) = 40 keys
		if st := loginFrom(t, e.srv.URL, fmt.Sprintf("127.0.4.%d", i+1), "reader", "guess"); st != http.StatusUnauthorized {
			t.Fatalf("filling address %d: status %d", i, st)
		}
	}
	refused := 0
	for i := range 20 {
		switch st := loginFrom(t, e.srv.URL, "127.0.5.1", "reader", fmt.Sprint("guess", i)); st {
		case http.StatusTooManyRequests:
			refused++
		case http.StatusUnauthorized:
		default:
			t.Fatalf("guess %d: status %d", i, st)
		}
	}
	if want := 20 - e.h.o.MaxBadLogins; refused != want {
		t.Errorf("new address with the table full: %d of 20 bad logins throttled, want %d", refused, want)
	}
	// An address already in the table keeps its own count.
	if st := loginFrom(t, e.srv.URL, "127.0.4.1", "reader", "again"); st != http.StatusUnauthorized {
		t.Errorf("known address: status %d, want 401 (its own count)", st)
	}
}
