package main

import (
	"bytes"
	"strings"
	"testing"

	"pbx-agent/sniffer/fixture"
)

// TestDaemonStoresAsteriskAndSeries: the daemon replaying the real Asterisk
// blind transfer with the AMI session Asterisk sent during it (-r … -ami …)
// writes each leg's correlation to cdr_asterisk (one Linkedid, each leg's
// channel, Asterisk's hang-up cause) and, with the default savegraph, each
// RTP stream's quality per second to cdr_rtp_series.
func TestDaemonStoresAsteriskAndSeries(t *testing.T) {
	pcap := fixture.Shared(t, "asterisk", "call-blind-transfer.pcap")
	amiRaw := fixture.Shared(t, "asterisk", "ami-call-blind-transfer.raw")
	mc, dbName := agentTestDB(t, "pbx_ast_")
	_, port, _ := strings.Cut(mc.Addr, ":")
	conf := agentDBConf(t, t.TempDir(), "agent.conf", mc, dbName, port)
	var out bytes.Buffer
	if code := run(sigContext(), []string{"-config", conf, "-r", pcap, "-ami", amiRaw, "--exit-after-replay"}, &out, &out); code != 0 {
		t.Fatalf("exit %d:\n%s", code, out.String())
	}
	db := agentDBConn(t, mc, dbName)
	rows, err := db.Query(`SELECT n.fbasename, a.linkedid, a.channel, COALESCE(a.hangup_cause, 0), COALESCE(a.hangup_cause_text, '')
		FROM cdr_asterisk a JOIN cdr_next n ON n.cdr_ID = a.cdr_ID ORDER BY a.cdr_ID`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	want := map[string]string{"26f2c4db2e2e9454": "PJSIP/1001-00000000", "4c14f56b-0636-4ae0-8979-4b3c8a93188f": "PJSIP/1002-00000001",
		"6b2038a6-6cab-40eb-9e9f-5d2d5bf4c960": "PJSIP/1003-00000002"}
	n := 0
	for rows.Next() {
		var callID, linked, channel, causeText string
		var cause int
		if err := rows.Scan(&callID, &linked, &channel, &cause, &causeText); err != nil {
			t.Fatal(err)
		}
		n++
		if linked != "1795560694.0" || want[callID] != channel || cause != 16 || causeText != "Normal Clearing" {
			t.Errorf("%s: Linkedid %s channel %s cause %d %q; want 1795560694.0, %s, 16 Normal Clearing", callID, linked, channel, cause, causeText, want[callID])
		}
	}
	if n != 3 {
		t.Errorf("%d cdr_asterisk rows, want the 3 legs", n)
	}
	var streams, series int
	if err := db.QueryRow("SELECT (SELECT COUNT(*) FROM cdr_rtp), (SELECT COUNT(*) FROM cdr_rtp_series)").Scan(&streams, &series); err != nil {
		t.Fatal(err)
	}
	if streams == 0 || series != streams {
		t.Errorf("%d cdr_rtp_series rows for %d RTP streams, want one each (savegraph defaults to yes)", series, streams)
	}
	t.Logf("cdr_asterisk: %d legs under one Linkedid; %d streams with their series", n, streams)
}
