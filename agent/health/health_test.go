package health

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestHandlers(t *testing.T) {
	tests := []struct {
		name      string
		capture   string
		db        string
		wantCode  int
		wantReady bool
	}{
		{"running, no database", CaptureRunning, "", 200, true},
		{"running, database down: queueing", CaptureRunning, DBQueueing, 200, true},
		{"replay finished, database up", CaptureReplayed, DBReachable, 200, true},
		{"front end", CaptureFrontEnd, DBReachable, 200, true},
		{"still starting", CaptureStarting, "", 503, false},
		{"stopped", CaptureStopped, DBReachable, 503, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := Probe{Version: "v1", Started: time.Now(), Capture: func() string { return tt.capture }, AMI: func() string { return AMIConnecting }}
			if tt.db != "" {
				p.Database = func(context.Context) string { return tt.db }
			}
			mux := http.NewServeMux()
			p.Register(mux)
			rec := httptest.NewRecorder()
			mux.ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
			var rd Ready
			if err := json.Unmarshal(rec.Body.Bytes(), &rd); err != nil {
				t.Fatal(err)
			}
			if rec.Code != tt.wantCode || rd.Ready != tt.wantReady || rd.Agent != AgentName || rd.AMI != AMIConnecting {
				t.Errorf("/readyz = %d %+v, want %d ready=%v", rec.Code, rd, tt.wantCode, tt.wantReady)
			}
			rec = httptest.NewRecorder()
			mux.ServeHTTP(rec, httptest.NewRequest("GET", "/healthz", nil))
			var lv Live
			if err := json.Unmarshal(rec.Body.Bytes(), &lv); err != nil || rec.Code != 200 || lv.Agent != AgentName || lv.Version != "v1" {
				t.Errorf("/healthz = %d %s (%v)", rec.Code, rec.Body, err)
			}
		})
	}
}
