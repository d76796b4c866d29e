package sourcekey

import (
	"net/netip"
	"testing"
)

func TestOf(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string // "" : the zero Addr
	}{
		{"ipv4", "192.0.2.7", "192.0.2.7"},
		{"ipv4 neighbour apart", "192.0.2.8", "192.0.2.8"},
		{"ipv4-mapped ipv6 is ipv4", "::ffff:192.0.2.7", "192.0.2.7"},
		{"ipv6 host part dropped", "2001:db8:1:2:aaaa:bbbb:cccc:dddd", "2001:db8:1:2::"},
		{"ipv6 first address", "2001:db8:1:2::", "2001:db8:1:2::"},
		{"ipv6 last address", "2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::"},
		{"ipv6 next /64 apart", "2001:db8:1:3::1", "2001:db8:1:3::"},
		{"ipv6 zone dropped", "fe80::1%eth0", "fe80::"},
		{"loopback ipv6", "::1", "::"},
		{"zero", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var in netip.Addr
			if tt.in != "" {
				in = netip.MustParseAddr(tt.in)
			}
			got := Of(in)
			if (tt.want == "" && got.IsValid()) || (tt.want != "" && got != netip.MustParseAddr(tt.want)) {
				t.Errorf("Of(%s) = %v, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func BenchmarkOf(b *testing.B) {
	a := netip.MustParseAddr("2001:db8:1:2:aaaa:bbbb:cccc:dddd")
	b.ReportAllocs()
	for b.Loop() {
		_ = Of(a)
	}
}

func TestOfAllocs(t *testing.T) {
	a := netip.MustParseAddr("2001:db8:1:2:aaaa:bbbb:cccc:dddd")
	if n := testing.AllocsPerRun(100, func() { _ = Of(a) }); n != 0 {
		t.Errorf("Of allocates %v times", n)
	}
}
