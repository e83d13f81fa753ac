package logring

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

func TestRingKeepsLastLines(t *testing.T) {
	var out bytes.Buffer
	r := New(3)
	log := slog.New(r.Handler(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelInfo})))
	log.Debug("not emitted, not kept")
	log.Info("one", "n", 1)
	sub := log.With("zone", "example.org.").WithGroup("xfr")
	sub.Warn("two", "serial", 7, "err", "timed out")
	log.Info("three")
	log.Error("four", slog.Group("peer", "addr", "192.0.2.1"))
	lines := r.Last(10)
	var got []string
	for _, l := range lines {
		got = append(got, l.Level.String()+" "+l.Message)
	}
	want := []string{
		`WARN two zone=example.org. xfr.serial=7 xfr.err="timed out"`,
		`INFO three`,
		`ERROR four peer.addr=192.0.2.1`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("kept:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if n := len(r.Last(2)); n != 2 {
		t.Fatalf("Last(2) returned %d lines", n)
	}
	if !strings.Contains(out.String(), "msg=one") || strings.Contains(out.String(), "not emitted") {
		t.Fatalf("records not passed on as the inner handler would:\n%s", out.String())
	}
}
