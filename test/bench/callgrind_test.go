package bench

import (
	"slices"
	"testing"
)

func TestCallgrindTotal(t *testing.T) {
	for _, c := range []struct {
		in   string
		want uint64
		ok   bool
	}{
		{"version: 1\ncreator: callgrind-3.19.0\nevents: Ir\nsummary: 12686130\n\ntotals: 12686130\n", 12686130, true},
		{"events: Ir Dr\nsummary: 42 7\n", 42, true},
		{"events: Ir\nfn=main\n1 5\n", 0, false},
		{"totals: many\n", 0, false},
	} {
		got, err := CallgrindTotal([]byte(c.in))
		if (err == nil) != c.ok || got != c.want {
			t.Errorf("%q: got %d, %v; want %d, ok %v", c.in, got, err, c.want, c.ok)
		}
	}
}

// TestCallgrindWrap: instrumentation starts off unless the server forks,
// and Go's two settings for valgrind are in the environment.
func TestCallgrindWrap(t *testing.T) {
	c := &Callgrind{Valgrind: "/usr/bin/valgrind", Dir: "/tmp/x"}
	argv, env := c.Wrap([]string{"/bin/srv", "-a"}, []string{"GOMAXPROCS=1"})
	want := []string{"/usr/bin/valgrind", "--tool=callgrind", "--instr-atstart=no", "--callgrind-out-file=/tmp/x/callgrind.%p", "/bin/srv", "-a"}
	if !slices.Equal(argv, want) {
		t.Errorf("argv %q, want %q", argv, want)
	}
	if !slices.Equal(env, []string{"GOMAXPROCS=1", "GODEBUG=cpu.rdtscp=off,asyncpreemptoff=1", "GOGC=off"}) {
		t.Errorf("env %q", env)
	}
	c.Forks = true
	if argv, _ := c.Wrap([]string{"/bin/srv"}, nil); argv[2] != "--instr-atstart=yes" {
		t.Errorf("forking server: %q", argv)
	}
}

func TestParseSocketDrops(t *testing.T) {
	in := "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n" +
		" 1822: 0100007F:3039 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 6399361 2 000000004afc6dc5 17\n" +
		" 1823: 0100007F:3039 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 6399362 2 000000004afc6dc6 3\n" +
		" 2905: 0100007F:8BDF 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 6380054 2 00000000284ed236 99\n"
	if got := parseSocketDrops([]byte(in), 12345); got != 20 {
		t.Errorf("drops on port 12345: %d, want 20", got)
	}
	if got := parseSocketDrops([]byte(in), 1); got != 0 {
		t.Errorf("drops on port 1: %d, want 0", got)
	}
}
