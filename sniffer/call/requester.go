package call

import "context"

// Requester says who asked for an action on a call (pause, unpause): the
// user, the client's address and the interface it came through. The API
// front ends attach it to the request's context (WithRequester); the
// recording orchestrator logs and audits it.
type Requester struct {
	User   string `json:"user,omitempty"`
	Source string `json:"source,omitempty"` // client address (host:port, or the unix peer)
	Via    string `json:"via,omitempty"`    // "api.php", "dashboard", "manager-tcp", "manager-socket", "reapply"
	Reason string `json:"reason,omitempty"` // auditReason
}

type requesterKey struct{}

// WithRequester attaches who asked to ctx.
func WithRequester(ctx context.Context, r Requester) context.Context {
	return context.WithValue(ctx, requesterKey{}, r)
}

// RequesterFrom returns who asked, as attached to ctx (zero when nobody said).
func RequesterFrom(ctx context.Context) Requester {
	r, _ := ctx.Value(requesterKey{}).(Requester)
	return r
}
