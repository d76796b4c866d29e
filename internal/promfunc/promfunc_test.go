package promfunc

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestRegister(t *testing.T) {
	n := uint64(3)
	reg := prometheus.NewRegistry()
	if err := Register(reg,
		Counter("x_total", "X.", func() uint64 { return n }),
		Gauge("y", "Y.", func() float64 { return 1.5 }),
	); err != nil {
		t.Fatal(err)
	}
	n = 7 // read at scrape time
	want := "# HELP x_total X.\n# TYPE x_total counter\nx_total 7\n# HELP y Y.\n# TYPE y gauge\ny 1.5\n"
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
	if err := Register(reg, Gauge("y", "Y.", func() float64 { return 0 })); err == nil {
		t.Error("a second series of the same name registered")
	}
}
