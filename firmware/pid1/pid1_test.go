package pid1

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseCmdline(t *testing.T) {
	a, err := parseCmdline("console=ttyS0,115200 panic=10 shoestring.slot=B shoestring.disk=2dee6dcd quiet")
	if err != nil || a.Slot != "B" || a.DiskID != 0x2dee6dcd {
		t.Fatalf("got %+v, %v", a, err)
	}
	for _, bad := range []string{"shoestring.slot=C", "shoestring.disk=xyz"} {
		if _, err := parseCmdline(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestPartitionDevice(t *testing.T) {
	for disk, want := range map[string]string{"/dev/sda": "/dev/sda4", "/dev/vda": "/dev/vda4", "/dev/mmcblk0": "/dev/mmcblk0p4", "/dev/nvme0n1": "/dev/nvme0n1p4"} {
		if got := partitionDevice(disk, 4); got != want {
			t.Errorf("%s: %s, want %s", disk, got, want)
		}
	}
}

// mbrImage is a disk with the Shoestring layout's four partitions.
func mbrImage(sig uint32, parts [4][2]uint32) []byte {
	b := make([]byte, 512)
	binary.LittleEndian.PutUint32(b[440:], sig)
	for i, p := range parts {
		e := b[446+16*i:]
		e[4] = 0x0c
		if i == 3 {
			e[4] = 0x83
		}
		binary.LittleEndian.PutUint32(e[8:], p[0])
		binary.LittleEndian.PutUint32(e[12:], p[1])
	}
	b[510], b[511] = 0x55, 0xaa
	return b
}

type memDisk struct{ b []byte }

func (m *memDisk) ReadAt(p []byte, off int64) (int, error) {
	if off >= int64(len(m.b)) {
		return 0, io.EOF
	}
	n := copy(p, m.b[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (m *memDisk) WriteAt(p []byte, off int64) (int, error) { return copy(m.b[off:], p), nil }

func TestGrowLastPartition(t *testing.T) {
	d := &memDisk{mbrImage(0x1234, [4][2]uint32{{2048, 131072}, {133120, 524288}, {657408, 524288}, {1181696, 131072}})}
	sig, parts, err := readMBR(d)
	if err != nil || sig != 0x1234 || parts[3].Start != 1181696 {
		t.Fatalf("readMBR: %x %+v %v", sig, parts, err)
	}
	// A 2 GiB disk plus an odd sector: grown to the last whole MiB.
	changed, size, err := growLastPartition(d, d, 4194304+7)
	if err != nil || !changed || size != 4194304-1181696 {
		t.Fatalf("grow: %v %d %v", changed, size, err)
	}
	_, parts, _ = readMBR(d)
	if parts[3].Size != size || parts[2].Size != 524288 {
		t.Fatalf("after grow: %+v", parts)
	}
	// Growing again changes nothing.
	if changed, _, err := growLastPartition(d, d, 4194304); changed || err != nil {
		t.Fatalf("second grow: %v %v", changed, err)
	}
}

func TestFsKind(t *testing.T) {
	empty := make([]byte, 128<<10)
	if k, _ := fsKind(bytes.NewReader(empty)); k != "empty" {
		t.Errorf("zeros: %s", k)
	}
	ext4 := append([]byte(nil), empty...)
	binary.LittleEndian.PutUint16(ext4[1024+0x38:], 0xef53)
	if k, _ := fsKind(bytes.NewReader(ext4)); k != "ext4" {
		t.Errorf("ext4: %s", k)
	}
	other := append([]byte(nil), empty...)
	other[5000] = 1
	if k, _ := fsKind(bytes.NewReader(other)); k != "unknown" {
		t.Errorf("data: %s (must never be formatted over)", k)
	}
}

func TestLogRing(t *testing.T) {
	r := newLogRing(100)
	for i := 0; i < 20; i++ {
		r.add(fmt.Sprintf("line %02d", i)) // 8 bytes with its newline
	}
	lines, next, lost := r.since(0, 0)
	if next != 20 || len(lines) != 12 || lines[0].Seq != 8 || lost != 8 {
		t.Fatalf("since(0): %d lines from %d, next %d, lost %d", len(lines), lines[0].Seq, next, lost)
	}
	lines, _, _ = r.since(18, 0)
	if len(lines) != 2 || lines[1].Text != "line 19" {
		t.Fatalf("since(18): %v", lines)
	}
	lines, _, _ = r.since(0, 3)
	if len(lines) != 3 || lines[2].Seq != 19 {
		t.Fatalf("limit 3: %v", lines)
	}
	if lines, _, _ := r.since(20, 0); len(lines) != 0 {
		t.Fatalf("since(next): %v", lines)
	}
	wait := r.wait()
	r.add("more")
	select {
	case <-wait:
	default:
		t.Fatal("waiters not woken")
	}
}

func TestLogFileBudgetAndRotation(t *testing.T) {
	dir := t.TempDir()
	r := newLogRing(1 << 20)
	// 1000 bytes an hour: ten 100-byte lines pass, the rest are dropped
	// (and counted); the file rotates past 1050 bytes.
	f := newLogFile(r, dir, 1050, time.Hour, 1000)
	line := strings.Repeat("x", 99)
	for i := 0; i < 30; i++ {
		r.add(line)
	}
	if err := f.flush(); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "shoestring.log"))
	if n := strings.Count(string(b), line); n != 10 {
		t.Fatalf("%d lines written, want the budget's 10", n)
	}
	// An hour later the budget is back, and the skipped lines are counted.
	f.refill = f.refill.Add(-time.Hour)
	r.add("after")
	if err := f.flush(); err != nil {
		t.Fatal(err)
	}
	b, _ = os.ReadFile(filepath.Join(dir, "shoestring.log"))
	if !strings.Contains(string(b), "count=20") {
		t.Fatalf("skipped lines not reported:\n%s", b)
	}
	// Past its size bound the file rotated to .1; at most two are kept.
	if _, err := os.Stat(filepath.Join(dir, "shoestring.log.1")); err != nil {
		t.Fatalf("no rotation: %v", err)
	}
	tail, err := f.tail(3)
	if err != nil || len(tail) != 3 || tail[2] != "after" {
		t.Fatalf("tail: %q %v", tail, err)
	}
}

func TestLoggerFeedsRing(t *testing.T) {
	r := newLogRing(1 << 20)
	var console bytes.Buffer
	log := newLogger(r, &console)
	log.Info("hello", "k", "v")
	log.Error("boom")
	lines, _, _ := r.since(0, 0)
	if len(lines) != 2 || !strings.Contains(lines[0].Text, "msg=hello k=v") || !strings.Contains(console.String(), "boom") {
		t.Fatalf("ring %v, console %q", lines, console.String())
	}
	select {
	case <-r.urgent:
	default:
		t.Fatal("an error did not ask for a flush")
	}
}

func TestParseKmsg(t *testing.T) {
	boot := time.Unix(1000, 0)
	level, ts, msg, ok := parseKmsg("3,1234,5000000,-;EXT4-fs error (device vda4): bad\n SUBSYSTEM=block\n", boot)
	if !ok || level != 3 || msg != "EXT4-fs error (device vda4): bad" || !ts.Equal(time.Unix(1005, 0)) {
		t.Fatalf("got %d %v %q %v", level, ts, msg, ok)
	}
	if kernelLevel(level) != slog.LevelError || kernelLevel(4) != slog.LevelWarn || kernelLevel(6) != slog.LevelInfo {
		t.Fatal("levels")
	}
	if _, _, _, ok := parseKmsg("garbage", boot); ok {
		t.Fatal("garbage parsed")
	}
}

func TestProvisionFrom(t *testing.T) {
	src, dest := t.TempDir(), t.TempDir()
	receipt := filepath.Join(t.TempDir(), "provisioned.txt")
	for name, text := range map[string]string{"README.txt": "read me", "node.yaml": "node: {}\n", "tailnet.authkey": "tskey\n"} {
		os.WriteFile(filepath.Join(src, name), []byte(text), 0o644)
	}
	os.Mkdir(filepath.Join(src, "subdir"), 0o755)
	// An older config is replaced.
	os.WriteFile(filepath.Join(dest, "node.yaml"), []byte("old"), 0o644)
	taken, err := provisionFrom(src, dest, receipt)
	if err != nil || !reflect.DeepEqual(taken, []string{"node.yaml", "tailnet.authkey"}) {
		t.Fatalf("taken %v, %v", taken, err)
	}
	if b, _ := os.ReadFile(filepath.Join(dest, "node.yaml")); string(b) != "node: {}\n" {
		t.Errorf("node.yaml is %q", b)
	}
	left, _ := os.ReadDir(src)
	if len(left) != 2 { // README.txt and subdir
		t.Errorf("left behind: %v", left)
	}
	if b, _ := os.ReadFile(receipt); !strings.Contains(string(b), "node.yaml, tailnet.authkey") {
		t.Errorf("receipt %q", b)
	}
	// Nothing new: nothing taken, no receipt line.
	if taken, err := provisionFrom(src, dest, receipt); len(taken) != 0 || err != nil {
		t.Errorf("second run: %v %v", taken, err)
	}
}

func TestNextBackoff(t *testing.T) {
	var w time.Duration
	var got []time.Duration
	for i := 0; i < 9; i++ {
		w = nextBackoff(w, time.Second)
		got = append(got, w)
	}
	want := []time.Duration{1, 2, 4, 8, 16, 32, 60, 60, 60}
	for i := range want {
		if got[i] != want[i]*time.Second {
			t.Fatalf("backoffs %v", got)
		}
	}
	if nextBackoff(time.Minute, 2*time.Minute) != time.Second {
		t.Fatal("a run that lasted did not reset the backoff")
	}
}

func TestWatchdogFeedsOnlyWhileHealthy(t *testing.T) {
	healthy, why := true, ""
	w := &watchdog{grace: time.Minute, healthy: func() (bool, string) { return healthy, why }}
	w.armed = time.Now()
	healthy, why = false, "stalled"
	if ok, _ := w.shouldFeed(); !ok {
		t.Fatal("not fed during the boot grace")
	}
	w.armed = time.Now().Add(-2 * time.Minute)
	if ok, reason := w.shouldFeed(); ok || reason != "stalled" {
		t.Fatalf("fed an unhealthy node after the grace (%q)", reason)
	}
	healthy = true
	if ok, _ := w.shouldFeed(); !ok {
		t.Fatal("healthy node not fed")
	}
	w.setHealth(nil)
	if ok, _ := w.shouldFeed(); ok {
		t.Fatal("fed with no node running")
	}
	// A planned stop is fed until its deadline, and not after.
	w.stopping = time.Now().Add(time.Minute)
	if ok, _ := w.shouldFeed(); !ok {
		t.Fatal("not fed while stopping")
	}
	w.stopping = time.Now().Add(-time.Second)
	if ok, _ := w.shouldFeed(); ok {
		t.Fatal("fed past the stop's deadline")
	}
}

func TestSupervisorRestarts(t *testing.T) {
	s := newSupervisor(slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	runs := make(chan int, 10)
	n := 0
	s.start(ctx, "flaky", func(ctx context.Context) error {
		n++
		runs <- n
		if n == 1 {
			panic("first run panics")
		}
		<-ctx.Done()
		return nil
	})
	for want := 1; want <= 2; want++ {
		select {
		case got := <-runs:
			if got != want {
				t.Fatalf("run %d", got)
			}
		case <-ctx.Done():
			t.Fatal("not restarted after a panic")
		}
	}
	cancel()
	if !s.wait(time.Second) {
		t.Fatal("service did not stop")
	}
	if s.counts()["flaky"] != 1 {
		t.Fatalf("restarts %v", s.counts())
	}
}

func TestZombieChildren(t *testing.T) {
	// A child that exits and is not waited for is a zombie child.
	p, err := os.StartProcess("/bin/true", []string{"true"}, &os.ProcAttr{})
	if err != nil {
		t.Skip("no /bin/true")
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		zs := zombieChildren()
		if len(zs) == 1 && zs[0] == p.Pid {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("zombies %v, want [%d]", zs, p.Pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
	p.Wait()
	if zs := zombieChildren(); len(zs) != 0 {
		t.Fatalf("zombies %v after wait", zs)
	}
}
