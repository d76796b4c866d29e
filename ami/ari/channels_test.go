package ari

import (
	"context"
	"errors"
	"net/url"
	"testing"

	"pbx-agent/ami/ari/aritest"
	"pbx-agent/sniffer/fixture"
)

// TestRecordedTapRequests replays flow c of the ARI recordings (snoop +
// externalMedia + mixing bridge on a live call, then teardown) in the
// recorded order: each request goes to the path the recorded client used,
// with the same parameters (query compared as decoded values), and gets
// the recorded answer.
func TestRecordedTapRequests(t *testing.T) {
	rec := aritest.LoadFile(t, fixture.Repo(t, "testdata", "ari", "ari-snoop-externalmedia.http.jsonl"))
	srv := aritest.NewServer(t, rec)
	c := New(Config{URL: srv.URL(), Username: "agent", Password: "agentpw"})
	ctx := context.Background()
	const caller = "1795561726.2"
	type step struct {
		name    string
		do      func() (string, error)
		want    string
		wantErr error
	}
	steps := []step{
		{name: "channels", do: func() (string, error) {
			chs, err := c.ListChannels(ctx)
			if err != nil || len(chs) != 2 {
				return "", err
			}
			return chs[0].ID + " " + chs[0].ProtocolID + " " + chs[1].Name, nil
		}, want: caller + " beea42de1ef1df92 PJSIP/1002-00000003"},
		{name: "bridges", do: func() (string, error) {
			bs, err := c.ListBridges(ctx)
			if err != nil || len(bs) != 1 {
				return "", err
			}
			return bs[0].BridgeClass + " " + bs[0].Channels[0] + " " + bs[0].Channels[1], nil
		}, want: "basic " + caller + " 1795561726.3"},
		{name: "bad spy", do: func() (string, error) {
			_, err := c.Snoop(ctx, caller, SnoopOptions{Spy: "sideways"})
			return "", err
		}, wantErr: ErrStatus},
		{name: "externalMedia without host", do: func() (string, error) {
			_, err := c.ExternalMedia(ctx, ExternalMediaOptions{})
			return "", err
		}, wantErr: ErrStatus},
		{name: "snoop", do: func() (string, error) {
			ch, err := c.Snoop(ctx, caller, SnoopOptions{Spy: "both", AppArgs: "tap," + caller, SnoopID: "tap-snoop-1"})
			if err != nil {
				return "", err
			}
			return ch.ID + " " + ch.Name + " " + SnoopedChannel(ch.Name), nil
		}, want: "tap-snoop-1 Snoop/1795561726.2-00000000 " + caller},
		{name: "externalMedia", do: func() (string, error) {
			ch, err := c.ExternalMedia(ctx, ExternalMediaOptions{ExternalHost: "127.0.0.1:40000", ChannelID: "tap-em-1", Data: "tap:" + caller})
			if err != nil {
				return "", err
			}
			return ch.ID + " " + ch.Name + " " + ch.State + " " + ch.ChannelVars["UNICASTRTP_LOCAL_ADDRESS"] + ":" + ch.ChannelVars["UNICASTRTP_LOCAL_PORT"], nil
		}, want: "tap-em-1 UnicastRTP/127.0.0.1:40000-0x7f6a7c015490 Down 127.0.0.1:10086"},
		{name: "local address", do: func() (string, error) { return c.ChannelVar(ctx, "tap-em-1", "UNICASTRTP_LOCAL_ADDRESS") }, want: "127.0.0.1"},
		{name: "local port", do: func() (string, error) { return c.ChannelVar(ctx, "tap-em-1", "UNICASTRTP_LOCAL_PORT") }, want: "10086"},
		{name: "bridge", do: func() (string, error) {
			b, err := c.CreateBridge(ctx, "tap-bridge-1", "mixing", "tap-"+caller)
			if err != nil {
				return "", err
			}
			return b.ID + " " + b.BridgeClass + " " + b.Creator, nil
		}, want: "tap-bridge-1 stasis Stasis"},
		{name: "add", do: func() (string, error) { return "", c.AddChannels(ctx, "tap-bridge-1", "tap-snoop-1", "tap-em-1") }},
		{name: "hangup em", do: func() (string, error) { return "", c.Hangup(ctx, "tap-em-1") }},
		{name: "hangup snoop", do: func() (string, error) { return "", c.Hangup(ctx, "tap-snoop-1") }},
		{name: "destroy bridge", do: func() (string, error) { return "", c.DestroyBridge(ctx, "tap-bridge-1") }},
		{name: "destroy bridge again", do: func() (string, error) { return "", c.DestroyBridge(ctx, "tap-bridge-1") }, wantErr: ErrNotFound},
	}
	for _, s := range steps {
		got, err := s.do()
		if !errors.Is(err, s.wantErr) || (s.wantErr == nil && err != nil) {
			t.Errorf("%s: err %v, want %v", s.name, err, s.wantErr)
		}
		if got != s.want {
			t.Errorf("%s: got %q, want %q", s.name, got, s.want)
		}
	}

	// What was sent against what the recorded client sent (the recording's
	// GETs after addChannel and the 405 probe were not replayed).
	var want []*aritest.Exchange
	for _, ex := range rec.Exchanges {
		switch {
		case ex.Method == "GET" && (ex.Path == "/ari/bridges/tap-bridge-1" || ex.Path == "/ari/channels/1795561726.2/snoop"):
		case ex.Method == "GET" && ex.Path == "/ari/channels" && len(want) > 0:
		default:
			want = append(want, ex)
		}
	}
	got := srv.Requests()
	if len(got) != len(want) {
		t.Fatalf("%d requests, recording has %d", len(got), len(want))
	}
	for i, r := range got {
		w := want[i]
		if r.Method != w.Method || r.Path != w.Path || r.Status != w.Status {
			t.Errorf("request %d: %s, recorded %s %s → %d", i, r, w.Method, w.Path, w.Status)
			continue
		}
		gq, _ := url.ParseQuery(r.Query)
		wq, _ := url.ParseQuery(w.Query)
		if w.Label == "" && gq.Encode() != wq.Encode() {
			t.Errorf("%s %s: query %s, recorded %s", r.Method, r.Path, gq.Encode(), wq.Encode())
		}
	}
}
