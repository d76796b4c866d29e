package doctor

import (
	"strings"
	"testing"
)

// FuzzMissingPrivs feeds arbitrary SHOW GRANTS lines and database names.
func FuzzMissingPrivs(f *testing.F) {
	f.Add("GRANT ALL PRIVILEGES ON *.* TO `pbx`@`localhost`", "voipmonitor")
	f.Add("GRANT SELECT, INSERT ON `voip\\_%`.* TO `u`@`%`", "voip_x")
	f.Add("GRANT `role` TO `u`@`%`", "db")
	f.Fuzz(func(t *testing.T, grant, db string) {
		m := missingPrivs(strings.Split(grant, "\n"), db)
		if len(m) > len(neededPrivs) {
			t.Fatalf("%d missing of %d", len(m), len(neededPrivs))
		}
	})
}
