package manager

import (
	"context"
	"errors"
	"testing"
	"time"

	"pbx-agent/agent/manager/client"
	"pbx-agent/agent/manager/wire"
)

func TestExchange(t *testing.T) {
	k := testKey(t)
	ts := startServer(t, func(c *Config) { c.Keys = wire.StaticKey(k) })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	wrong := wire.AESKey{}
	tests := []struct {
		name          string
		network, addr string
		cmd           string
		key           *wire.AESKey
		want          string
		wantErr       bool
	}{
		{"aes", "tcp", ts.addr, "totalcalls", &k, "3", false},
		{"plain refused", "tcp", ts.addr, "totalregisters", nil, "need aes!\n", false},
		{"unix plain", "unix", ts.sock, "totalregisters", nil, "0", false},
		{"wrong key: reply undecodable", "tcp", ts.addr, "listcalls", &wrong, "", true},
		{"no server", "unix", ts.sock + ".missing", "getversion", nil, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := client.Exchange(ctx, tt.network, tt.addr, tt.cmd, tt.key)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if string(got) != tt.want {
				t.Errorf("reply %q, want %q", got, tt.want)
			}
		})
	}
	// A wrong key's reply is encrypted with the server's key: undecodable here.
	if _, err := client.Exchange(ctx, "tcp", ts.addr, "listcalls", &wrong); !errors.Is(err, wire.ErrBadReply) {
		t.Errorf("wrong key: %v, want wire.ErrBadReply", err)
	}
}
