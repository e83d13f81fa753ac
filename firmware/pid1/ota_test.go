package pid1

import (
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/shoestring-dns/shoestring/board"
)

func TestOTALayout(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	qemu := board.Runtime{Name: "qemu-amd64", Boot: board.GRUBEnv}
	for _, c := range []struct {
		name string
		b    *box
		why  string
	}{
		{"no disk", &box{board: qemu, args: bootArgs{Slot: "A"}, dataProblem: "no boot disk (MBR signature 12345678) found"}, "no boot disk"},
		{"no data", &box{board: qemu, args: bootArgs{Slot: "A"}, disk: "/dev/vda", dataProblem: "mount /dev/vda4: EIO"}, "without the data partition"},
		{"no slot", &box{board: qemu, disk: "/dev/vda", dataDev: "/dev/vda4"}, "names no slot"},
		{"no method", &box{board: board.Runtime{Name: "unknown"}, args: bootArgs{Slot: "A"}, disk: "/dev/vda", dataDev: "/dev/vda4"}, "no boot method"},
	} {
		c.b.log = log
		l, why := c.b.otaLayout()
		if l != nil || !strings.Contains(why, c.why) {
			t.Errorf("%s: layout %v, why %q; want none, %q", c.name, l, why, c.why)
		}
	}

	b := &box{log: log, board: qemu, args: bootArgs{Slot: "B", DiskID: 0x1234}, disk: "/dev/vda", dataDev: "/dev/vda4"}
	l, why := b.otaLayout()
	if l == nil || why != "" {
		t.Fatalf("qemu-amd64: no layout: %s", why)
	}
	if l.Method != board.GRUBEnv || l.Booted != "B" || l.Board != "qemu-amd64" || l.Cmdline != nil || l.Slots.Method() != board.GRUBEnv {
		t.Errorf("qemu-amd64 layout: %+v", l)
	}
	if _, _, err := l.SlotDir("B"); err == nil || !strings.Contains(err.Error(), "running slot") {
		t.Errorf("SlotDir of the running slot: %v", err)
	}

	// The Pi's installer writes the slot's cmdline.txt, naming that slot.
	pi := &box{log: log, board: board.Runtime{Name: "rpi", Boot: board.Tryboot}, args: bootArgs{Slot: "A", DiskID: 0xcafe}, disk: "/dev/mmcblk0", dataDev: "/dev/mmcblk0p4"}
	l, why = pi.otaLayout()
	if l == nil || l.Cmdline == nil {
		t.Fatalf("rpi: no cmdline generator (%s)", why)
	}
	if c := l.Cmdline("B"); !strings.Contains(c, "shoestring.slot=B") || !strings.Contains(c, "shoestring.disk=0000cafe") {
		t.Errorf("rpi slot B cmdline: %q", c)
	}
}
