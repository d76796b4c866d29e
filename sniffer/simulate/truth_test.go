package simulate

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestTruthTSVRoundTrip(t *testing.T) {
	_, truth := generate(t, Options{Calls: 6, Duration: time.Second, Loss: 5, Busy: 20, Cancelled: 20,
		Registers: 3, RegisterAuth: 30, RegisterForbidden: 30, IPv6: true, Seed: 3})
	var buf bytes.Buffer
	if err := truth.WriteTSV(&buf); err != nil {
		t.Fatal(err)
	}
	got, err := ReadTSV(&buf)
	if err != nil {
		t.Fatalf("ReadTSV: %v", err)
	}
	want := *truth
	want.Frames, want.SIP = 0, 0
	if !reflect.DeepEqual(*got, want) {
		t.Errorf("round trip:\n got %+v\nwant %+v", *got, want)
	}
}

func TestReadTSVErrors(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		wantErr bool
	}{
		{"empty", "", false},
		{"headers only", tsvStreamHeader + "\n" + tsvCallHeader + "\n", false},
		{"stream", "stream\tid\t0\t0\t0x01020304\t10.1.0.0:20000\t192.0.2.10:10000\t50\t1\n", false},
		{"unknown kind", "flow\tx\n", true},
		{"short stream", "stream\tid\t0\t0\n", true},
		{"bad ssrc", "stream\tid\t0\t0\tzz\t10.1.0.0:20000\t192.0.2.10:10000\t50\t1\n", true},
		{"bad address", "stream\tid\t0\t0\t0x1\t10.1.0.0\t192.0.2.10:10000\t50\t1\n", true},
		{"pt too big", "stream\tid\t200\t0\t0x1\t10.1.0.0:1\t192.0.2.10:10000\t50\t1\n", true},
		{"bad time", "call\tid\ta\tb\t10.1.0.0:5060\t192.0.2.10:5060\tyesterday\t\t\t200\t3\tcaller\n", true},
		{"bad register code", "register\tid\tu\t172.16.0.1:5060\t\t2\tok\n", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ReadTSV(strings.NewReader(tt.in))
			if (err != nil) != tt.wantErr {
				t.Fatalf("ReadTSV error %v, wantErr %v", err, tt.wantErr)
			}
			if err != nil && !errors.Is(err, ErrTruthFormat) {
				t.Errorf("error %v does not wrap ErrTruthFormat", err)
			}
		})
	}
}

func FuzzReadTSV(f *testing.F) {
	f.Add("stream\tid\t0\t0\t0x01020304\t10.1.0.0:20000\t192.0.2.10:10000\t50\t1\n")
	f.Add("call\tid\ta\tb\t10.1.0.0:5060\t192.0.2.10:5060\t2024-01-01T00:00:00Z\t\t2024-01-01T00:00:01Z\t486\t0\t\n")
	f.Add("register\tid\tu\t[2001:db8:2::1]:5060\t2024-01-01T00:00:00.05Z\t2\t403\n")
	f.Fuzz(func(t *testing.T, in string) {
		truth, err := ReadTSV(strings.NewReader(in))
		if err != nil {
			return
		}
		// What parsed must write and parse back to the same thing.
		var buf bytes.Buffer
		if err := truth.WriteTSV(&buf); err != nil {
			t.Fatal(err)
		}
		again, err := ReadTSV(&buf)
		if err != nil {
			t.Fatalf("re-reading written truth: %v\n%s", err, buf.String())
		}
		if len(again.Streams) != len(truth.Streams) || len(again.Calls) != len(truth.Calls) || len(again.Registers) != len(truth.Registers) {
			t.Fatalf("round trip changed record counts")
		}
	})
}
