package wire

import (
	"bytes"
	"io"
	"testing"
)

// The key and IV of the recorded AES exchanges (shared/fixtures).
const (
	testKeyB64 = "GeyrAEoZkjLiVYljWm40Rg=="
	testIVB64  = "6vmjUAjvXCUoAIBTpcDC/A=="
)

func testKey(t testing.TB) AESKey {
	t.Helper()
	k, err := ParseAESKey(testKeyB64, testIVB64)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestParseAESKey(t *testing.T) {
	tests := []struct {
		name    string
		key, iv string
		wantErr bool
	}{
		{"recorded", testKeyB64, testIVB64, false},
		{"short key", "AAAA", testIVB64, true},
		{"not base64", "!!!", testIVB64, true},
		{"short iv", testKeyB64, "AAAAAAAAAAA=", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseAESKey(tt.key, tt.iv)
			if (err != nil) != tt.wantErr {
				t.Errorf("err = %v, wantErr %v", err, tt.wantErr)
			}
		})
	}
	k, err := ParseManagerKeyJSON([]byte(`{"key":"` + testKeyB64 + `","iv":"` + testIVB64 + `"}`))
	if err != nil || k != testKey(t) {
		t.Errorf("ParseManagerKeyJSON = %v, %v", k, err)
	}
	if _, err := ParseManagerKeyJSON([]byte(`{"key":1}`)); err == nil {
		t.Error("ParseManagerKeyJSON accepted a bad row")
	}
}

func TestAESRoundTrip(t *testing.T) {
	k := testKey(t)
	for _, n := range []int{0, 1, 15, 16, 17, 1000, 70000} {
		pt := bytes.Repeat([]byte{'z'}, n)
		var out bytes.Buffer
		aw := NewReplyWriter(&out, k)
		_, _ = aw.Write(pt)
		_ = aw.Close()
		if n == 0 {
			if out.Len() != 0 {
				t.Errorf("empty reply produced %d bytes", out.Len())
			}
			continue
		}
		got, err := k.DecryptReply(out.Bytes())
		if err != nil || !bytes.Equal(got, pt) {
			t.Errorf("n=%d: round trip failed: %v", n, err)
		}
	}
	if _, err := k.Decrypt([]byte("short")); err == nil {
		t.Error("open accepted a non-block-sized ciphertext")
	}
}

func BenchmarkAESWriter64K(b *testing.B) {
	k := AESKey{}
	buf := make([]byte, 64<<10)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		aw := NewReplyWriter(io.Discard, k)
		_, _ = aw.Write(buf)
		_ = aw.Close()
	}
}
