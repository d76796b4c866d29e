package webui

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/google/gopacket/pcapgo"

	"pbx-agent/sniffer/call"
)

// seedHeaders creates VoIPmonitor's custom header tables with the two
// headers the seed's getVoipCalls example asks for, and values for cdr 1.
func seedHeaders(t testing.TB, e *testEnv) {
	t.Helper()
	for _, q := range []string{
		"CREATE TABLE cdr_custom_headers (id int AUTO_INCREMENT PRIMARY KEY, name varchar(255), header_field varchar(255), type varchar(16), dynamic_table int, dynamic_column int, state varchar(16))",
		"INSERT INTO cdr_custom_headers (name, header_field, type, dynamic_table, dynamic_column) VALUES ('Cell-ID-Caller','Cell-ID-Caller','dynamic',1,1),('Cell-ID-Called','Cell-ID-Called','dynamic',1,2)",
		"CREATE TABLE cdr_next_1 (cdr_ID bigint unsigned PRIMARY KEY, custom_header_1 varchar(255), custom_header_2 varchar(255))",
		"INSERT INTO cdr_next_1 VALUES (1,'cell-17','cell-42')",
	} {
		if _, err := e.db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
}

// TestSeedExamples runs every example request of seed 001 (host changed,
// placeholders filled with this database's values) and checks status and
// shape; JSON answers are compared byte for byte with golden files.
func TestSeedExamples(t *testing.T) {
	e := newEnv(t, nil)
	seedHeaders(t, e)
	cookie := e.login(t, "admin", "adminpw")
	const auth = "task=%s&user=admin&password=adminpw&params="
	api := func(task, params string) string {
		return "/php/api.php?task=" + task + "&user=admin&password=adminpw&params=" + url.QueryEscape(params)
	}
	tests := []struct {
		name   string
		method string
		path   string
		body   string
		cookie bool
		status int
		golden string // "" = no golden
		ctype  string // expected Content-Type prefix
	}{
		{"listing seed", "POST", "/php/model/sql.php?task=LISTING&module=CDR&fdatefrom=2013-05-08T00:00:00&fcaller=190", "", true, 200, "listing-seed", "application/json"},
		{"listing all", "POST", "/php/model/sql.php?task=LISTING&module=CDR&fdatefrom=2013-05-08T00:00:00&sort=" + url.QueryEscape(`[{"property":"calldate2","direction":"DESC"}]`) + "&limit=2&page=2", "", true, 200, "listing-page2", "application/json"},
		{"listing demo prefix", "POST", "/demo/php/model/sql.php?task=LISTING&module=CDR&fdatefrom=2013-05-08T00:00:00&fcaller=190", "", false, 401, "", "application/json"},
		{"suppress", "POST", "/php/model/sql.php?task=LISTING&module=CDR&fdatefrom=2013-05-08T00:00:00&suppress_results=1", "", true, 200, "listing-suppress", "application/json"},
		{"grouped", "POST", "/php/model/sql.php?task=LISTING&module=CDR&fdatefrom=2013-05-08T00:00:00&groupBy=lastSIPresponse", "", true, 200, "listing-grouped", "application/json"},
		{"listing post form", "POST", "/php/model/sql.php", "task=LISTING&module=CDR&fdatefrom=2013-05-08T00%3A00%3A00&fcallerd_type=0&fcaller=alice", true, 200, "listing-form", "application/json"},
		{"getVoipCalls post simple", "POST", "/php/api.php", `{"task": "getVoipCalls", "user": "admin", "password": "adminpw", "params": {"startTime": "2013-01-01", "endTime": "2026-12-01", "caller": "1001", "customHeaders": "Cell-ID-Caller,Cell-ID-Called"}}`, false, 200, "getVoipCalls-simple", "application/json"},
		{"getVoipCalls post array", "POST", "/php/api.php", `{"task": "getVoipCalls", "user": "admin", "password": "adminpw", "params": [{"startTime": "2013-01-01", "endTime": "2026-12-01", "caller": "alice"},{"startTime": "2013-01-01", "endTime": "2026-12-01", "caller": "8801", "customHeaders": "Cell-ID-Caller,Cell-ID-Called"}]}`, false, 200, "getVoipCalls-array", "application/json"},
		{"getVoipCalls get simple", "GET", api("getVoipCalls", `{"startTime":"2013-01-01","endTime":"2026-12-01","caller":"1001","customHeaders":"Cell-ID-Caller,Cell-ID-Called"}`), "", false, 200, "getVoipCalls-simple", "application/json"},
		{"getVoipCalls by header", "GET", api("getVoipCalls", `{"startTime":"2013-01-01","Cell-ID-Caller":"cell-17"}`), "", false, 200, "getVoipCalls-header", "application/json"},
		{"getVoiceRecording unknown cdr", "POST", "/php/api.php", `{"task": "getVoiceRecording", "user": "admin", "password": "adminpw", "params": {"cdrId": "4919"}}`, false, 404, "", "application/json"},
		{"getVoiceRecording cdr", "GET", api("getVoiceRecording", `{"cdrId":1}`), "", false, 200, "", "audio/x-wav"},
		{"getVoiceRecording afterconnect", "GET", api("getVoiceRecording", `{"cdrId":1,"saveaudio_afterconnect":"yes"}`), "", false, 200, "", "audio/x-wav"},
		{"getVoiceRecording callId", "GET", api("getVoiceRecording", `{"callId":"f431e3956bf2ebd6","cidInterval":10}`), "", false, 200, "", "audio/x-wav"},
		{"getVoiceRecording zip", "GET", api("getVoiceRecording", `{"callId":"f431e3956bf2ebd6","cidInterval":10,"zip":true}`), "", false, 200, "", "application/zip"},
		{"getVoiceRecording header", "GET", api("getVoiceRecording", `{"customHeader":"Cell-ID-Caller","customHeaderValue":"cell-17","calldate":"2026-11-24"}`), "", false, 200, "", "audio/x-wav"},
		{"listActiveCalls post", "POST", "/php/api.php", `{"task": "listActiveCalls", "user": "admin", "password": "adminpw", "params": {"sensorId": "1"}}`, false, 200, "listActiveCalls", "application/json"},
		{"listActiveCalls get", "GET", api("listActiveCalls", `{"sensorId":"1"}`), "", false, 200, "listActiveCalls", "application/json"},
		{"handleActiveCall post", "POST", "/php/api.php", `{"task": "handleActiveCall", "user": "admin", "password": "adminpw", "auditReason": "legal hold", "params": {"sensorId": "1","command":"pausecall","callRef":"0x7f0e4c3c2680"}}`, false, 200, "handleActiveCall", "application/json"},
		{"handleActiveCall get", "GET", api("handleActiveCall", `{"sensorId":"1","command":"unpausecall","callRef":"0x7f0e4c3c2680"}`), "", false, 200, "", "application/json"},
		{"handleActiveCall unknown", "GET", api("handleActiveCall", `{"sensorId":"1","command":"pausecall","callRef":"0x1"}`), "", false, 404, "", "application/json"},
		{"reportSummary post", "POST", "/php/api.php", `{"task": "reportSummary", "user": "admin", "password": "adminpw", "params": {"report_name": "test summary", "datetime_from": "2026-11-24", "datetime_to": "2026-11-24"}}`, false, 200, "reportSummary", "application/json"},
		{"reportSummary get html", "GET", api("reportSummary", `{"report_name":"test summary","datetime_from":"2026-11-24","datetime_to":"2026-11-24","json":false}`), "", false, 200, "", "text/html"},
		{"getShareURL rtp interval", "GET", api("getShareURL", `{"callId":"f431e3956bf2ebd6","cidInterval":60,"rtp":true}`), "", false, 200, "getShareURL-rtp", "application/json"},
		{"getShareURL rtp", "GET", api("getShareURL", `{"callId":"f431e3956bf2ebd6","rtp":true}`), "", false, 200, "", "application/json"},
		{"getShareURL sip interval", "GET", api("getShareURL", `{"callId":"f431e3956bf2ebd6","cidInterval":60}`), "", false, 200, "", "application/json"},
		{"getShareURL sip", "GET", api("getShareURL", `{"callId":"f431e3956bf2ebd6"}`), "", false, 200, "", "application/json"},
		{"getShareURL history interval", "GET", api("getShareURL", `{"callId":"f431e3956bf2ebd6","cidInterval":60, "sip_history": true}`), "", false, 200, "", "application/json"},
		{"getShareURL history", "GET", api("getShareURL", `{"callId":"f431e3956bf2ebd6","sip_history": true}`), "", false, 200, "", "application/json"},
		{"getPCAP", "GET", api("getPCAP", `{"callId":"f431e3956bf2ebd6"}`), "", false, 200, "", "application/vnd.tcpdump.pcap"},
		{"getPCAP interval (legs zipped)", "GET", api("getPCAP", `{"callId":"f431e3956bf2ebd6","cidInterval":60}`), "", false, 200, "", "application/zip"},
		{"getPCAP merged", "GET", api("getPCAP", `{"callId":"f431e3956bf2ebd6","cidInterval":60,"cidMerge":true}`), "", false, 200, "", "application/vnd.tcpdump.pcap"},
		{"getPCAP merged zip", "GET", api("getPCAP", `{"callId":"f431e3956bf2ebd6","cidInterval":60,"cidMerge":true,"zip":true}`), "", false, 200, "", "application/zip"},
		{"listCdrIds post placeholder", "POST", "/php/api.php", `{"task": "listCdrIds", "user": "admin", "password": "adminpw", "params": {"offset":"offset_num","size":"number of cdr records"}}`, false, 400, "", "application/json"},
		{"listCdrIds", "GET", api("listCdrIds", `{"offset":"3","size":"3"}`), "", false, 200, "listCdrIds", "application/json"},
		{"listCdrIds simple iso", "GET", api("listCdrIds", `{"offset":"3","size":"3"}`) + "&flags=3", "", false, 200, "listCdrIds-simple-iso", "application/json"},
		{"pcap.php", "GET", "/php/pcap.php?id=1", "", true, 200, "", "application/vnd.tcpdump.pcap"},
		{"pcap.php no rtp", "POST", "/php/pcap.php?id=1&disable_rtp=1", "", true, 200, "", "application/vnd.tcpdump.pcap"},
		{"admin cdr_filter", "GET", `/admin.php?cdr_filter={fcallid:"1-3812687@127.0.0.1"}`, "", true, 200, "admin-cdr-filter", "application/json"},
		{"brief_data", "POST", "/php/pcap2text.php?action=brief_data&id=1&dns_lookup=0&ip_not_allowed=10.1.1.1,10.2.2.0/24", "", true, 200, "brief-data", "application/json"},
		{"brief_data hidden", "POST", "/php/pcap2text.php?action=brief_data&id=7&dns_lookup=0&ip_not_allowed=127.0.0.0/8", "", true, 200, "brief-data-hidden", "application/json"},
		{"brief", "POST", "/php/pcap2text.php?action=brief&id=1&dns_lookup=0&ip_not_allowed=10.1.1.1,10.2.2.0/24", "", true, 200, "", "text/html"},
		{"getMSC", "POST", "/php/pcap2text.php?action=getMSC&id=1&dns_lookup=0&ip_not_allowed=10.1.1.1,10.2.2.0/24", "", true, 200, "", "text/html"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var hdr []string
			if tt.cookie {
				hdr = append(hdr, "Cookie", cookie)
			}
			if tt.method == "POST" && strings.HasPrefix(tt.body, "task=") {
				hdr = append(hdr, "Content-Type", "application/x-www-form-urlencoded")
			}
			st, b, h := e.do(t, tt.method, tt.path, tt.body, hdr...)
			if st != tt.status {
				t.Fatalf("status %d, want %d: %s", st, tt.status, b)
			}
			if ct := h.Get("Content-Type"); !strings.HasPrefix(ct, tt.ctype) {
				t.Errorf("Content-Type %q, want %q", ct, tt.ctype)
			}
			if strings.HasPrefix(tt.ctype, "application/json") && !json.Valid(b) {
				t.Errorf("invalid JSON: %s", b)
			}
			if tt.golden != "" {
				golden(t, tt.golden, b)
			}
			switch tt.ctype {
			case "application/vnd.tcpdump.pcap":
				checkPCAP(t, b)
			case "audio/x-wav":
				if len(b) < 44 || string(b[:4]) != "RIFF" || string(b[8:12]) != "WAVE" {
					t.Errorf("not a WAV: % x", b[:min(len(b), 16)])
				}
			case "application/zip":
				zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
				if err != nil || len(zr.File) == 0 {
					t.Errorf("bad zip: %v", err)
				}
			}
		})
	}
	_ = auth
}

func checkPCAP(t *testing.T, b []byte) int {
	t.Helper()
	r, err := pcapgo.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("not a pcap: %v", err)
	}
	n := 0
	for {
		if _, _, err := r.ReadPacketData(); err != nil {
			break
		}
		n++
	}
	if n == 0 {
		t.Error("pcap without packets")
	}
	return n
}

// TestPauseNamesTheRequester pins issue 16 item 8 for api.php and the
// dashboard: a pause reaches the call table with the user, the client's
// address and the interface, and the audit table names all three.
func TestPauseNamesTheRequester(t *testing.T) {
	e := newEnv(t, nil)
	body := `{"task":"handleActiveCall","user":"admin","password":"adminpw","auditReason":"legal hold","params":{"sensorId":"1","command":"pausecall","callRef":"0x7f0e4c3c2680"}}`
	if st, b, _ := e.do(t, "POST", "/php/api.php", body); st != 200 {
		t.Fatalf("api.php pausecall: %d %s", st, b)
	}
	cookie := e.login(t, "admin", "adminpw")
	body = `{"task":"handleActiveCall","params":{"sensorId":"1","command":"unpausecall","callRef":"0x7f0e4c3c2680"}}`
	if st, b, _ := e.do(t, "POST", "/php/api.php?via=dashboard", body, "Cookie", cookie, "Content-Type", "application/json"); st != 200 {
		t.Fatalf("dashboard unpausecall: %d %s", st, b)
	}
	by := e.calls.Requesters()
	want := []call.Requester{{User: "admin", Via: "api.php", Reason: "legal hold"}, {User: "admin", Via: "dashboard"}}
	if len(by) != len(want) {
		t.Fatalf("requesters %+v", by)
	}
	for i, w := range want {
		if by[i].User != w.User || by[i].Via != w.Via || by[i].Reason != w.Reason || !strings.HasPrefix(by[i].Source, "127.0.0.1") {
			t.Errorf("pause %d: requester %+v, want %+v from 127.0.0.1", i, by[i], w)
		}
	}
	rows, err := e.db.Query("SELECT user, address, via, task FROM pbx_agent_api_audit ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []string
	for rows.Next() {
		var u, a, v, task string
		if err := rows.Scan(&u, &a, &v, &task); err != nil {
			t.Fatal(err)
		}
		got = append(got, u+" "+strings.Split(a, ":")[0]+" "+v+" "+task)
	}
	if w := []string{"admin 127.0.0.1 api.php handleActiveCall", "admin 127.0.0.1 dashboard handleActiveCall"}; !slices.Equal(got, w) {
		t.Errorf("audit rows %q, want %q", got, w)
	}
}
