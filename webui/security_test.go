package webui

import (
	"fmt"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"pbx-agent/webui/cdrquery"
)

// routeCalls are requests to every route that answer data with valid
// credentials; none may answer 2xx without them.
func routeCalls() []struct{ method, path, body string } {
	api := func(task, params string) string {
		return "/php/api.php?task=" + task + "&params=" + url.QueryEscape(params)
	}
	var out []struct{ method, path, body string }
	for _, prefix := range []string{"", "/demo"} {
		for _, p := range []string{
			"/php/model/sql.php?task=LISTING&module=CDR&fdatefrom=2013-05-08T00:00:00",
			"/php/model/sql.php?task=LISTING&module=CDR&fdatefrom=2013-05-08T00:00:00&suppress_results=1",
			api("getVoipCalls", `{"startTime":"2013-01-01"}`),
			api("getVoiceRecording", `{"cdrId":1}`),
			api("getVoiceRecording", `{"cdrId":1,"ogg":true}`),
			api("listActiveCalls", `{}`),
			api("handleActiveCall", `{"command":"pausecall","callRef":"0x7f0e4c3c2680"}`),
			api("reportSummary", `{"report_name":"x","datetime_from":"2013-01-01","datetime_to":"2030-01-01"}`),
			api("getShareURL", `{"callId":"f431e3956bf2ebd6"}`),
			api("getPCAP", `{"callId":"f431e3956bf2ebd6"}`),
			api("listCdrIds", `{"offset":1,"size":5}`),
			"/php/pcap.php?id=1",
			"/php/pcap2text.php?action=brief_data&id=1",
			"/php/pcap2text.php?action=brief&id=1",
			"/php/pcap2text.php?action=getMSC&id=1",
			`/admin.php?cdr_filter={fcaller:"1001"}`,
		} {
			for _, m := range []string{"GET", "POST"} {
				out = append(out, struct{ method, path, body string }{m, prefix + p, ""})
			}
		}
	}
	out = append(out, struct{ method, path, body string }{"GET", "/share.php?token=eyJpIjpbMV0sImUiOjk5OTk5OTk5OTl9.AAAA", ""})
	out = append(out, struct{ method, path, body string }{"GET", "/share.php", ""})
	return out
}

func TestNoDataWithoutCredentials(t *testing.T) {
	e := newEnv(t, nil)
	creds := []struct {
		name string
		add  func(path string) (string, []string)
		want int
	}{
		{"none", func(p string) (string, []string) { return p, nil }, 401},
		{"wrong password", func(p string) (string, []string) { return withCreds(p, "admin", "nope"), nil }, 401},
		{"unknown user", func(p string) (string, []string) { return withCreds(p, "ghost", "x"), nil }, 401},
		{"bad cookie", func(p string) (string, []string) {
			return p, []string{"Cookie", "PHPSESSID=aaaaaaaaaaaaaaaaaaaaaaaaaa"}
		}, 401},
		{"no rights", func(p string) (string, []string) { return withCreds(p, "nobody", "nopw"), nil }, 403},
		{"refused address", func(p string) (string, []string) { return withCreds(p, "faraway", "farpw"), nil }, 403},
	}
	walked := 0
	for _, c := range creds {
		for _, rc := range routeCalls() {
			path, hdr := c.add(rc.path)
			st, b, _ := e.do(t, rc.method, path, rc.body, hdr...)
			if st >= 200 && st < 300 {
				t.Errorf("%s: %s %s answered %d: %.200s", c.name, rc.method, path, st, b)
			}
			if st >= 500 {
				t.Errorf("%s: %s %s: %d %s", c.name, rc.method, path, st, b)
			}
			walked++
		}
	}
	// Throttling is per address too; the last walks may see 429s, which are
	// also refusals. Every one was refused.
	t.Logf("%d requests without valid credentials, 0 answered with data", walked)
}

func withCreds(p, user, pass string) string {
	sep := "?"
	if strings.Contains(p, "?") {
		sep = "&"
	}
	return p + sep + "user=" + url.QueryEscape(user) + "&password=" + url.QueryEscape(pass)
}

func TestRights(t *testing.T) {
	e := newEnv(t, nil)
	tests := []struct {
		name, user, pass, path string
		want                   int
	}{
		{"reader lists", "reader", "readpw", "/php/api.php?task=listCdrIds&params={}", 200},
		{"reader cannot pause", "reader", "readpw", "/php/api.php?task=handleActiveCall&params=" + url.QueryEscape(`{"command":"pausecall","callRef":"0x7f0e4c3c2680"}`), 403},
		{"operator pauses", "operator", "oppw", "/php/api.php?task=handleActiveCall&params=" + url.QueryEscape(`{"command":"pausecall","callRef":"0x7f0e4c3c2680"}`), 200},
		{"nobody cannot list", "nobody", "nopw", "/php/api.php?task=listCdrIds&params={}", 403},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, b, _ := e.do(t, "GET", withCreds(tt.path, tt.user, tt.pass), "")
			if st != tt.want {
				t.Errorf("status %d want %d: %s", st, tt.want, b)
			}
		})
	}
	if !e.calls.Paused(0x7f0e4c3c2680) {
		t.Error("operator's pausecall did not reach the call table")
	}
	var n int
	if err := e.db.QueryRow("SELECT COUNT(*) FROM " + auditTable + " WHERE task = 'handleActiveCall'").Scan(&n); err != nil || n != 1 {
		t.Errorf("audit rows for handleActiveCall = %d (%v), want 1 (the operator's; a call refused for want of the right never runs)", n, err)
	}
}

func TestThrottleAndSessions(t *testing.T) {
	var now atomic.Int64
	now.Store(time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC).UnixNano())
	e := newEnv(t, func(o *Options) {
		o.Now = func() time.Time { return time.Unix(0, now.Load()).UTC() }
		o.MaxBadLogins = 3
		o.BadLoginWindow = time.Minute
		o.SessionTTL = 10 * time.Minute
	})
	login := "/php/model/sql.php?module=bypass_login&user=reader&pass="
	for i := 0; i < 3; i++ {
		if st, _, _ := e.do(t, "POST", login+"wrong", ""); st != 401 {
			t.Fatalf("bad login %d: %d", i, st)
		}
	}
	if st, b, _ := e.do(t, "POST", login+"readpw", ""); st != 429 {
		t.Fatalf("4th login with the right password while throttled: %d %s", st, b)
	}
	now.Add(int64(2 * time.Minute))
	cookie := e.login(t, "reader", "readpw")
	listing := "/php/model/sql.php?task=LISTING&module=CDR&fdatefrom=2013-05-08&suppress_results=1"
	if st, b, _ := e.do(t, "GET", listing, "", "Cookie", cookie); st != 200 || string(b) != `{"total":"8"}` {
		t.Fatalf("session: %d %s", st, b)
	}
	now.Add(int64(9 * time.Minute)) // sliding: still alive
	if st, _, _ := e.do(t, "GET", listing, "", "Cookie", cookie); st != 200 {
		t.Fatalf("session expired early: %d", st)
	}
	now.Add(int64(11 * time.Minute))
	if st, _, _ := e.do(t, "GET", listing, "", "Cookie", cookie); st != 401 {
		t.Fatalf("session should have expired: %d", st)
	}
	// Removing the user ends the session at once.
	cookie = e.login(t, "reader", "readpw")
	e.h.SetUsers(nil)
	if st, _, _ := e.do(t, "GET", listing, "", "Cookie", cookie); st != 401 {
		t.Fatalf("session of a removed user: %d", st)
	}
}

func TestDisableAuth(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.DisableAuth = true; o.Users = nil })
	st, b, _ := e.do(t, "GET", "/php/model/sql.php?task=LISTING&module=CDR&fdatefrom=2013-05-08&suppress_results=1", "")
	if st != 200 || string(b) != `{"total":"8"}` {
		t.Fatalf("%d %s", st, b)
	}
}

// injections are SQL-injection and type-confusion values.
var injections = []string{
	`' OR '1'='1`, `1' OR 1=1 -- `, `"; DROP TABLE cdr; --`, `1; DROP TABLE cdr`, `\' OR 1=1 #`,
	`%' UNION SELECT 1,2,3 -- `, `1 AND SLEEP(5)`, `0x41414141`, `-1`, `1e309`, `NaN`, `[1,2]`,
	`{"a":1}`, `null`, `true`, "\x00", `%`, `_`, `\`, strings.Repeat("9", 400), `1/**/OR/**/1=1`,
	`ID DESC; DROP TABLE cdr`, `calldate`,
}

func TestSQLInjection(t *testing.T) {
	e := newEnv(t, nil)
	cookie := e.login(t, "admin", "adminpw")
	params := []string{"fcaller", "fcalled", "fcallerd_type", "fcaller_domain", "fcalled_domain", "fcallerd_domain_type",
		"fcallername", "fsipcallerip", "fsipcalledip", "fsipcallerdip_type", "fa_saddr", "fb_saddr", "fab_saddr_type",
		"fcodec", "fdurationgt", "fdurationlt", "fpddgt", "fpddlt", "fsipresponse", "fbye", "ftrunk", "fa_ua", "fb_ua",
		"fab_ua_type", "fcallid", "fsensor_id", "frtcp_maxjitter", "frtcp_avgjitter", "frtcp_maxfr", "frtcp_avgfr",
		"fmosf1", "fmosf2", "fmosadapt", "f_d50", "f_d300", "floss1", "floss10", "ffilterTemplate", "page", "start",
		"limit", "sort", "orderByLoss", "orderBySrcNumber_asc", "suppress_results", "groupBy", "fdatefrom", "fdateto"}
	for _, p := range params {
		for _, inj := range injections {
			q := url.Values{"task": {"LISTING"}, "module": {"CDR"}, "fdatefrom": {"2013-05-08"}}
			q.Set(p, inj)
			st, b, _ := e.do(t, "POST", "/php/model/sql.php?"+q.Encode(), "", "Cookie", cookie)
			switch {
			case st == 200:
				// A value that parsed must not have widened the match.
				if strings.HasPrefix(p, "fcall") || strings.HasSuffix(p, "_ua") || strings.HasSuffix(p, "domain") {
					if strings.Contains(inj, "OR") && !strings.Contains(string(b), `"total":"0"`) {
						t.Errorf("%s=%q matched rows: %.200s", p, inj, b)
					}
				}
			case st == 400:
			default:
				t.Errorf("%s=%q: status %d %s", p, inj, st, b)
			}
		}
	}
	apiParams := []string{"startTime", "startTimeTo", "callEnd", "caller", "called", "onlyConnected", "customHeaders",
		"cdrId", "callId", "cidInterval", "customHeader", "sensorId", "callRef", "command", "offset", "size",
		"datetime_from", "datetime_to", "json", "zip", "cidMerge", "rtp", "sip_history", "Bad Header'"}
	for _, task := range []string{"getVoipCalls", "getVoiceRecording", "listActiveCalls", "handleActiveCall",
		"reportSummary", "getShareURL", "getPCAP", "listCdrIds"} {
		for _, p := range apiParams {
			for _, inj := range injections[:12] {
				body := fmt.Sprintf(`{"task":%q,"user":"admin","password":"adminpw","params":{"startTime":"2013-01-01",%q:%q}}`, task, p, inj)
				st, b, _ := e.do(t, "POST", "/php/api.php", body)
				if st >= 500 {
					t.Errorf("%s %s=%q: %d %s", task, p, inj, st, b)
				}
			}
		}
	}
	var n int
	if err := e.db.QueryRow("SELECT COUNT(*) FROM cdr").Scan(&n); err != nil || n != 8 {
		t.Fatalf("cdr rows after the attack: %d, %v", n, err)
	}
}

func TestBadRequestsAreClearJSON(t *testing.T) {
	e := newEnv(t, nil)
	cookie := e.login(t, "admin", "adminpw")
	tests := []struct {
		name, method, path, body string
		want                     int
		msg                      string
	}{
		{"no date", "GET", "/php/model/sql.php?task=LISTING&module=CDR&fcaller=190", "", 400, "fdatefrom or fdateto is required"},
		{"bad codec", "GET", "/php/model/sql.php?task=LISTING&module=CDR&fdatefrom=2013-01-01&fcodec=x", "", 400, `fcodec=\"x\"`},
		{"unknown task", "GET", "/php/model/sql.php?task=FOO&module=CDR", "", 400, "unsupported task"},
		{"unknown api task", "GET", "/php/api.php?task=nope", "", 400, "unknown task"},
		{"bad params json", "GET", "/php/api.php?task=listCdrIds&params=%7Bx", "", 400, "params"},
		{"bad json body", "POST", "/php/api.php", `{"task":`, 400, "JSON body"},
		{"missing startTime", "GET", "/php/api.php?task=getVoipCalls&params=%7B%7D", "", 400, "startTime is required"},
		{"unknown header", "GET", "/php/api.php?task=getVoipCalls&params=" + url.QueryEscape(`{"startTime":"2020-01-01","X-Foo":"1"}`), "", 400, "custom header"},
		{"bad callRef", "POST", "/php/api.php?task=handleActiveCall&params=" + url.QueryEscape(`{"command":"pausecall","callRef":"zz"}`), "", 400, "call reference"},
		{"bad command", "POST", "/php/api.php?task=handleActiveCall&params=" + url.QueryEscape(`{"command":"hangup","callRef":"0x1"}`), "", 400, "pausecall or unpausecall"},
		{"ogg not a flag", "GET", "/php/api.php?task=getVoiceRecording&params=" + url.QueryEscape(`{"cdrId":1,"ogg":"maybe"}`), "", 400, "ogg"},
		{"pcap bad id", "GET", "/php/pcap.php?id=abc", "", 400, "not a CDR id"},
		{"pcap unknown id", "GET", "/php/pcap.php?id=999", "", 404, "no CDR"},
		{"pcap2text bad action", "GET", "/php/pcap2text.php?action=x&id=1", "", 400, "action"},
		{"pcap2text bad hide", "GET", "/php/pcap2text.php?action=brief&id=1&ip_not_allowed=foo", "", 400, "ip_not_allowed"},
		{"admin bad filter", "GET", "/admin.php?cdr_filter=" + url.QueryEscape(`{a:{}}`), "", 400, "filter object"},
		{"share bad token", "GET", "/share.php?token=abc", "", 403, "share link"},
		{"body too large", "POST", "/php/api.php", `{"task":"listCdrIds","params":"` + strings.Repeat("x", 2<<20) + `"}`, 413, "larger than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, b, h := e.do(t, tt.method, tt.path, tt.body, "Cookie", cookie)
			if st != tt.want || !strings.Contains(string(b), tt.msg) || !strings.HasPrefix(h.Get("Content-Type"), "application/json") {
				t.Errorf("got %d %s (%s), want %d containing %q", st, b, h.Get("Content-Type"), tt.want, tt.msg)
			}
			if !strings.HasPrefix(string(b), `{"success":false,"error":`) {
				t.Errorf("not the error shape: %s", b)
			}
		})
	}
}

func TestShareLink(t *testing.T) {
	e := newEnv(t, nil)
	st, b, _ := e.do(t, "GET", withCreds("/php/api.php?task=getShareURL&params="+url.QueryEscape(`{"callId":"f431e3956bf2ebd6","cidInterval":60,"rtp":true}`), "admin", "adminpw"), "")
	if st != 200 {
		t.Fatal(st, string(b))
	}
	s := string(b)
	i := strings.Index(s, "/share.php?token=")
	tok := s[i+len("/share.php?token=") : strings.Index(s[i:], `","`)+i]
	st, body, h := e.do(t, "GET", "/share.php?token="+tok, "")
	if st != 200 || h.Get("Content-Type") != "application/vnd.tcpdump.pcap" {
		t.Fatalf("share download: %d %s", st, body)
	}
	legs := checkPCAP(t, body)
	_, one, _ := e.do(t, "GET", withCreds("/php/pcap.php?id=1", "admin", "adminpw"), "")
	if n := checkPCAP(t, one); legs <= n {
		t.Errorf("two-leg share has %d packets, one leg %d", legs, n)
	}
	// Tampered token.
	if st, _, _ := e.do(t, "GET", "/share.php?token=x"+tok, ""); st != 403 {
		t.Errorf("tampered token: %d", st)
	}
	_ = cdrquery.Columns
}
