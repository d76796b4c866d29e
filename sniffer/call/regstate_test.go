package call

import "testing"

func TestRegisterStateName(t *testing.T) {
	for s, want := range map[RegisterState]string{
		0: "", RegOK: "OK", RegFailed: "Failed", RegUnknownOK: "UnknownMessageOK",
		RegManyMsgs: "ManyRegMessages", RegExpired: "Expired", RegUnregister: "Unregister", 7: "",
	} {
		if got := s.Name(); got != want {
			t.Errorf("RegisterState(%d).Name() = %q, want %q", int(s), got, want)
		}
	}
}
