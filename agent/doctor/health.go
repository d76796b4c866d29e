package doctor

import (
	"context"
	"net/http"
)

// Handler serves a report as JSON: 200 when no check fails, 503 otherwise.
// run is called per request with the request's context (pick cheap checks:
// the capture probe and MySQL are worth a cache in front).
func Handler(run func(ctx context.Context) *Report) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		rep := run(req.Context())
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		if !rep.OK() {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		_ = rep.WriteJSON(w)
	})
}
