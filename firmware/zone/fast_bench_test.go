package zone

import (
	"bytes"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// millionZone is a zone as test/bench writes it with -million: 500,000
// names with an A and an AAAA each, every line with owner, TTL and class.
func millionZone() []byte {
	var b bytes.Buffer
	o := "bench.test."
	fmt.Fprintf(&b, "%s\t3600\tIN\tSOA\tns1.%s hostmaster.%s 1 7200 3600 1209600 3600\n", o, o, o)
	fmt.Fprintf(&b, "%s\t3600\tIN\tNS\tns1.%s\n", o, o)
	for i := range 500000 {
		name := fmt.Sprintf("host%d.%s", i, o)
		fmt.Fprintf(&b, "%s\t3600\tIN\tA\t10.%d.%d.%d\n", name, i>>16&255, i>>8&255, i&255)
		fmt.Fprintf(&b, "%s\t3600\tIN\tAAAA\t2001:db8::%x:%x\n", name, i>>16, i&0xffff)
	}
	return b.Bytes()
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkParseMillion reads the 1M-record zone with the fast reader
// (fast) and with ZoneParser alone (miekg), reporting CPU seconds (user +
// sys, all threads: GC included) per read besides wall time.
func BenchmarkParseMillion(b *testing.B) {
	data := millionZone()
	for _, mode := range []string{"fast", "miekg"} {
		b.Run(mode, func(b *testing.B) {
			n := 0
			fn := func(rr dns.RR, pos Position, problem string) { n++ }
			b.ReportAllocs()
			c0 := cpuTime()
			for range b.N {
				n = 0
				var err error
				if mode == "fast" {
					err = ParseStream(bytes.NewReader(data), "bench.test.", "z", "", fn)
				} else {
					p := &parser{filename: "z"}
					fr := newFastReader(bytes.NewReader(data), "bench.test.")
					fr.start = 1
					err = p.rest(fr, fn)
				}
				if err != nil || n != 1000002 {
					b.Fatal(n, err)
				}
			}
			b.ReportMetric((cpuTime()-c0).Seconds()/float64(b.N), "cpu-s/op")
		})
	}
}
