package tenants

import "testing"

func TestSameRoute(t *testing.T) {
	a := "192.0.2.0/24         unicast [host4 21:39:42.432] * (100) [AS65000i]"
	for _, c := range []struct {
		b    string
		same bool
	}{
		{a, true},
		{"192.0.2.0/24         unicast [host4 21:39:42.433] * (100) [AS65000i]", true},  // BIRD's clock conversion
		{"192.0.2.0/24         unicast [host4 21:39:43.433] * (100) [AS65000i]", false}, // learnt again
		{"192.0.2.0/24         unicast [host4 21:39:42.432] * (100) [AS65001i]", false},
		{"", false},
	} {
		if got := sameRoute(a, c.b); got != c.same {
			t.Errorf("sameRoute(%q, %q) = %v", a, c.b, got)
		}
	}
}
