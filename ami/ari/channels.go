package ari

import (
	"context"
	"net/http"
	"net/url"
	"strings"
)

// Channel is what ARI answers for a channel (the fields the agent uses).
type Channel struct {
	ID    string `json:"id"` // the Uniqueid, or the channelId/snoopId asked for
	Name  string `json:"name"`
	State string `json:"state"`
	// ProtocolID is the SIP Call-ID of a PJSIP channel ("" for Snoop and
	// UnicastRTP).
	ProtocolID string `json:"protocol_id"`
	// ChannelVars: externalMedia's answer carries UNICASTRTP_LOCAL_ADDRESS
	// and UNICASTRTP_LOCAL_PORT, Asterisk's side of the RTP stream.
	ChannelVars map[string]string `json:"channelvars,omitempty"`
}

// Bridge is what ARI answers for a bridge.
type Bridge struct {
	ID          string   `json:"id"`
	Name        string   `json:"name"`
	BridgeType  string   `json:"bridge_type"`
	BridgeClass string   `json:"bridge_class"` // "stasis" for the app's bridges, "basic" for the dialplan's
	Creator     string   `json:"creator"`
	Channels    []string `json:"channels"`
}

// SnoopOptions are POST /channels/{id}/snoop's parameters. Spy is which
// audio is copied out: "in" (what the channel sends: the snooped party
// speaking), "out" (what it hears), "both" (mixed), "none".
type SnoopOptions struct {
	Spy, Whisper string // Whisper default "none"
	App          string // default: the client's Application
	AppArgs      string // StasisStart.args, comma-separated
	SnoopID      string // the snoop channel's id
}

// ExternalMediaOptions are POST /channels/externalMedia's parameters; the
// zero values give what the agent's tap uses: RTP over UDP, client,
// direction both.
type ExternalMediaOptions struct {
	App          string // default: the client's Application
	ExternalHost string // host:port Asterisk sends RTP to (required)
	Format       string // default "ulaw"
	ChannelID    string
	Data         string // StasisStart.args of the new channel
}

// query builds a query string in the given key order (Asterisk does not
// care; it keeps requests readable and comparable with recordings).
// Empty values are left out.
func query(kv ...string) string {
	var b strings.Builder
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "" {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('&')
		}
		b.WriteString(url.QueryEscape(kv[i]))
		b.WriteByte('=')
		b.WriteString(url.QueryEscape(kv[i+1]))
	}
	if b.Len() == 0 {
		return ""
	}
	return "?" + b.String()
}

func (c *Client) app(a string) string {
	if a == "" {
		return c.cfg.Application
	}
	return a
}

// Snoop creates a snoop channel on channelID (Asterisk answers 200 with
// the new channel, named Snoop/<uniqueid>-<n>; 404 ErrNotFound for an
// unknown channel, 400 for a bad spy value).
func (c *Client) Snoop(ctx context.Context, channelID string, o SnoopOptions) (*Channel, error) {
	if o.Whisper == "" {
		o.Whisper = "none"
	}
	var ch Channel
	path := "/channels/" + url.PathEscape(channelID) + "/snoop" +
		query("spy", o.Spy, "whisper", o.Whisper, "app", c.app(o.App), "appArgs", o.AppArgs, "snoopId", o.SnoopID)
	if err := c.do(ctx, http.MethodPost, path, &ch); err != nil {
		return nil, err
	}
	return &ch, nil
}

// ExternalMedia creates a channel sending the audio it gets in a bridge
// as RTP to o.ExternalHost (chan_rtp: UnicastRTP/<host:port>-0x…, state
// Down; Asterisk's RTP address is in its ChannelVars).
func (c *Client) ExternalMedia(ctx context.Context, o ExternalMediaOptions) (*Channel, error) {
	if o.Format == "" {
		o.Format = "ulaw"
	}
	var ch Channel
	path := "/channels/externalMedia" + query("app", c.app(o.App), "external_host", o.ExternalHost, "format", o.Format,
		"channelId", o.ChannelID, "encapsulation", "rtp", "transport", "udp", "connection_type", "client",
		"direction", "both", "data", o.Data)
	if err := c.do(ctx, http.MethodPost, path, &ch); err != nil {
		return nil, err
	}
	return &ch, nil
}

// ChannelVar reads one channel variable (GET /channels/{id}/variable).
func (c *Client) ChannelVar(ctx context.Context, channelID, name string) (string, error) {
	var v struct {
		Value string `json:"value"`
	}
	path := "/channels/" + url.PathEscape(channelID) + "/variable" + query("variable", name)
	if err := c.do(ctx, http.MethodGet, path, &v); err != nil {
		return "", err
	}
	return v.Value, nil
}

// CreateBridge creates a bridge (POST /bridges; typ e.g. "mixing").
func (c *Client) CreateBridge(ctx context.Context, id, typ, name string) (*Bridge, error) {
	var b Bridge
	if err := c.do(ctx, http.MethodPost, "/bridges"+query("type", typ, "bridgeId", id, "name", name), &b); err != nil {
		return nil, err
	}
	return &b, nil
}

// AddChannels puts channels into a bridge (204).
func (c *Client) AddChannels(ctx context.Context, bridgeID string, channelIDs ...string) error {
	return c.do(ctx, http.MethodPost, "/bridges/"+url.PathEscape(bridgeID)+"/addChannel"+query("channel", strings.Join(channelIDs, ",")), nil)
}

// Hangup hangs up a channel (DELETE /channels/{id}; 404 ErrNotFound when
// it is already gone).
func (c *Client) Hangup(ctx context.Context, channelID string) error {
	return c.do(ctx, http.MethodDelete, "/channels/"+url.PathEscape(channelID), nil)
}

// DestroyBridge destroys a bridge (DELETE /bridges/{id}; 404 ErrNotFound
// when it is already gone). Hanging up its channels does not destroy it.
func (c *Client) DestroyBridge(ctx context.Context, bridgeID string) error {
	return c.do(ctx, http.MethodDelete, "/bridges/"+url.PathEscape(bridgeID), nil)
}

// ListChannels returns every channel (GET /channels).
func (c *Client) ListChannels(ctx context.Context) ([]Channel, error) {
	var out []Channel
	if err := c.do(ctx, http.MethodGet, "/channels", &out); err != nil {
		return nil, err
	}
	return out, nil
}

// ListBridges returns every bridge (GET /bridges).
func (c *Client) ListBridges(ctx context.Context) ([]Bridge, error) {
	var out []Bridge
	if err := c.do(ctx, http.MethodGet, "/bridges", &out); err != nil {
		return nil, err
	}
	return out, nil
}
