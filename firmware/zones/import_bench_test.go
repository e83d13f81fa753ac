package zones

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// writeMillionZone writes the zone test/bench serves with -million:
// 500,000 names with an A and an AAAA each.
func writeMillionZone(b *testing.B, path string) {
	b.Helper()
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriter(f)
	o := "bench.test."
	fmt.Fprintf(w, "%s\t3600\tIN\tSOA\tns1.%s hostmaster.%s 1 7200 3600 1209600 3600\n", o, o, o)
	fmt.Fprintf(w, "%s\t3600\tIN\tNS\tns1.%s\n", o, o)
	for i := range 500000 {
		name := fmt.Sprintf("host%d.%s", i, o)
		fmt.Fprintf(w, "%s\t3600\tIN\tA\t10.%d.%d.%d\n", name, i>>16&255, i>>8&255, i&255)
		fmt.Fprintf(w, "%s\t3600\tIN\tAAAA\t2001:db8::%x:%x\n", name, i>>16, i&0xffff)
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkImportFileMillion imports the 1M-record zone file into a fresh
// store and serves it: parse, validate, store, build — the path a node
// takes from its zone file to answering. It reports CPU seconds (user +
// sys, GC included) per import besides wall time.
func BenchmarkImportFileMillion(b *testing.B) {
	dir := b.TempDir()
	file := filepath.Join(dir, "zone.db")
	writeMillionZone(b, file)
	b.ReportAllocs()
	var cpu time.Duration
	for i := range b.N {
		b.StopTimer()
		zs, srv, _ := open(b, filepath.Join(dir, fmt.Sprint(i)))
		b.StartTimer()
		c0 := cpuTime()
		if _, err := zs.ImportFile(file, "bench.test.", "file"); err != nil {
			b.Fatal(err)
		}
		cpu += cpuTime() - c0
		if served(srv, "bench.test.") != 1 {
			b.Fatal("not served")
		}
	}
	b.ReportMetric(cpu.Seconds()/float64(b.N), "cpu-s/op")
}
