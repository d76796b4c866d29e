package webui

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"pbx-agent/internal/testkit"
	"pbx-agent/sniffer/call"
	"pbx-agent/sniffer/call/calltest"
)

// fakeRemote is two other sensors: 2 (one call) and 3 (did not answer).
type fakeRemote struct {
	mu     sync.Mutex
	paused map[string]bool
}

func (f *fakeRemote) ActiveCalls(_ context.Context, sensor int) ([]call.Summary, []RemoteSensor, error) {
	calls := []call.Summary{{Sensor: 2, Ref: 0x7f02, CallID: "two@test", CallDate: time.Date(2025, 1, 1, 11, 59, 0, 0, time.UTC),
		Connected: true, ConnectDuration: 40 * time.Second, Caller: "2001", Called: "2002",
		CallerIP: netip.MustParseAddr("10.0.2.1"), LastSIPResponseNum: 200}}
	sensors := []RemoteSensor{{ID: 2, Name: "two", Status: "ok", Calls: 1}, {ID: 3, Name: "three", Status: "timeout", Error: "sensor did not answer in time"}}
	switch sensor {
	case -1:
		return calls, sensors, nil
	case 2:
		return calls, sensors[:1], nil
	case 3:
		return nil, sensors[1:], nil
	}
	return nil, nil, fmt.Errorf("%w: no sensor %d", ErrNotFound, sensor)
}

func (f *fakeRemote) Pause(_ context.Context, sensor int, ref uint64, on bool) error {
	if sensor != 2 || ref != 0x7f02 {
		return fmt.Errorf("%w: call 0x%x not on sensor %d", ErrNotFound, ref, sensor)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.paused[fmt.Sprintf("%d/0x%x", sensor, ref)] = on
	return nil
}

// TestPauseFails: a pause the call's PBX did not carry out (Asterisk's
// actions timed out or failed) is the server's failure, 503, not the
// request's.
func TestPauseFails(t *testing.T) {
	local := &calltest.Table{Calls: []call.CDR{{CallID: "one@test", CallRef: 0x7f01}},
		PauseErr: fmt.Errorf("recording: some actions failed: MixMonitor: %w", context.DeadlineExceeded)}
	h := New(Options{Users: []User{{Name: "all", Secret: "pw", Rights: AllRights}}, Calls: local, SensorID: 1, Logger: testLogger()})
	srv := httptest.NewServer(h)
	defer srv.Close()
	for _, tc := range []struct {
		ref  string
		want int
	}{{"0x7f01", http.StatusServiceUnavailable}, {"0x7f09", http.StatusNotFound}} {
		body := `{"task":"handleActiveCall","user":"all","password":"pw","params":{"command":"pausecall","callRef":"` + tc.ref + `"}}`
		code, b, _ := testkit.HTTP(t).Read(http.Post(srv.URL+"/php/api.php", "application/json", strings.NewReader(body)))
		if code != tc.want {
			t.Errorf("pause %s: status %d, want %d: %s", tc.ref, code, tc.want, b)
		}
	}
}

func TestRemoteSensors(t *testing.T) {
	now := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
	local := &calltest.Table{Calls: []call.CDR{{CallID: "one@test", CallRef: 0x7f01,
		CallDate: now.Add(-10 * time.Second), Caller: "1001", Called: "1002", LastSIPResponseNum: 180}}}
	remote := &fakeRemote{paused: map[string]bool{}}
	users := []User{
		{Name: "all", Secret: "pw", Rights: AllRights},
		{Name: "only2", Secret: "pw", Rights: AllRights, Sensors: []int{2}},
	}
	h := New(Options{Users: users, Calls: local, SensorID: 1, Remote: remote,
		Logger: testLogger(), Now: func() time.Time { return now }})
	srv := httptest.NewServer(h)
	defer srv.Close()
	post := func(user, task, params string) (int, string) {
		body := fmt.Sprintf(`{"task":%q,"user":%q,"password":"pw","params":%s}`, task, user, params)
		code, b, _ := testkit.HTTP(t).Read(http.Post(srv.URL+"/php/api.php", "application/json", strings.NewReader(body)))
		return code, string(b)
	}
	type reply struct {
		Total   string `json:"total"`
		Results []struct {
			Ref     string  `json:"callreference"`
			Sensor  *string `json:"id_sensor"`
			Connect *string `json:"connect_duration"`
		} `json:"results"`
		Sensors []struct {
			ID     string `json:"id_sensor"`
			Status string `json:"status"`
		} `json:"sensors"`
	}
	tests := []struct {
		name, user, task, params string
		wantCode                 int
		wantRefs                 string // callreferences joined with ","
		wantSensors              string // id:status joined with ","
	}{
		{"merged", "all", "listActiveCalls", `{}`, 200, "0x7f01,0x7f02", "2:ok,3:timeout"},
		{"own sensor only: no remote asked", "all", "listActiveCalls", `{"sensorId":"1"}`, 200, "0x7f01", ""},
		{"one remote sensor", "all", "listActiveCalls", `{"sensorId":"2"}`, 200, "0x7f02", "2:ok"},
		{"slow sensor reported", "all", "listActiveCalls", `{"sensorId":"3"}`, 200, "", "3:timeout"},
		{"unknown sensor", "all", "listActiveCalls", `{"sensorId":"7"}`, 404, "", ""},
		{"restricted user sees sensor 2 only", "only2", "listActiveCalls", `{}`, 200, "0x7f02", "2:ok"},
		{"restricted user asks sensor 3", "only2", "listActiveCalls", `{"sensorId":"3"}`, 403, "", ""},
		{"pause on sensor 2", "all", "handleActiveCall", `{"command":"pausecall","callRef":"0x7f02","sensorId":"2"}`, 200, "", ""},
		{"pause unknown call on sensor 2", "all", "handleActiveCall", `{"command":"pausecall","callRef":"0x7f09","sensorId":"2"}`, 404, "", ""},
		{"restricted user pauses on sensor 3", "only2", "handleActiveCall", `{"command":"pausecall","callRef":"0x7f02","sensorId":"3"}`, 403, "", ""},
		{"local pause still local", "all", "handleActiveCall", `{"command":"pausecall","callRef":"0x7f01","sensorId":"1"}`, 200, "", ""},
		{"local pause unknown call", "all", "handleActiveCall", `{"command":"pausecall","callRef":"0x7f09","sensorId":"1"}`, 404, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := post(tt.user, tt.task, tt.params)
			if code != tt.wantCode {
				t.Fatalf("status %d, want %d: %s", code, tt.wantCode, body)
			}
			if tt.task != "listActiveCalls" || code != 200 {
				return
			}
			var r reply
			if err := json.Unmarshal([]byte(body), &r); err != nil {
				t.Fatalf("%v: %s", err, body)
			}
			var refs, sensors []string
			for _, c := range r.Results {
				refs = append(refs, c.Ref)
			}
			for _, s := range r.Sensors {
				sensors = append(sensors, s.ID+":"+s.Status)
			}
			if strings.Join(refs, ",") != tt.wantRefs || strings.Join(sensors, ",") != tt.wantSensors {
				t.Errorf("refs %v sensors %v, want %s / %s: %s", refs, sensors, tt.wantRefs, tt.wantSensors, body)
			}
		})
	}
	if !remote.paused["2/0x7f02"] || !local.Paused(0x7f01) {
		t.Errorf("pauses: remote %v local %v", remote.paused, local.Paused(0x7f01))
	}
}
