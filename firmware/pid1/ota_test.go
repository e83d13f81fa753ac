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
	brix := board.Runtime{Name: "brix", Boot: board.GRUBEnv}
	for _, c := range []struct {
		name string
		b    *box
		why  string
	}{
		{"no disk", &box{board: brix, args: bootArgs{Slot: "A"}, dataProblem: "no boot disk (MBR signature 12345678) found"}, "no boot disk"},
		{"no data", &box{board: brix, args: bootArgs{Slot: "A"}, disk: "/dev/vda", dataProblem: "mount /dev/vda4: EIO"}, "without the data partition"},
		{"no slot", &box{board: brix, disk: "/dev/vda", dataDev: "/dev/vda4"}, "names no slot"},
		{"no method", &box{board: board.Runtime{Name: "unknown"}, args: bootArgs{Slot: "A"}, disk: "/dev/vda", dataDev: "/dev/vda4"}, "no boot method"},
	} {
		c.b.log = log
		l, why := c.b.otaLayout()
		if l != nil || !strings.Contains(why, c.why) {
			t.Errorf("%s: layout %v, why %q; want none, %q", c.name, l, why, c.why)
		}
	}

	b := &box{log: log, board: brix, args: bootArgs{Slot: "B", DiskID: 0x1234}, disk: "/dev/vda", dataDev: "/dev/vda4"}
	l, why := b.otaLayout()
	if l == nil || why != "" {
		t.Fatalf("brix: no layout: %s", why)
	}
	if l.Method != board.GRUBEnv || l.Booted != "B" || l.Board != "brix" || l.Cmdline != nil || l.Slots.Method() != board.GRUBEnv {
		t.Errorf("brix layout (GRUB keeps the command lines: none written): %+v", l)
	}
	if _, _, err := l.SlotDir("B"); err == nil || !strings.Contains(err.Error(), "running slot") {
		t.Errorf("SlotDir of the running slot: %v", err)
	}

	// The Pi, and the QEMU harness booting the same way, read the slot's
	// cmdline.txt: the installer writes it, naming that slot.
	for _, rt := range []board.Runtime{{Name: "rpi", Boot: board.Tryboot}, {Name: "qemu-amd64", Boot: board.Harness}} {
		pi := &box{log: log, board: rt, args: bootArgs{Slot: "A", DiskID: 0xcafe}, disk: "/dev/vda", dataDev: "/dev/vda4"}
		l, why = pi.otaLayout()
		if l == nil || l.Cmdline == nil {
			t.Fatalf("%s: no cmdline generator (%s)", rt.Name, why)
		}
		if c := l.Cmdline("B"); !strings.Contains(c, "shoestring.slot=B") || !strings.Contains(c, "shoestring.disk=0000cafe") {
			t.Errorf("%s slot B cmdline: %q", rt.Name, c)
		}
	}
}
