package pid1

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/shoestring-dns/shoestring/board"
	"github.com/shoestring-dns/shoestring/ota/agent"
	"github.com/shoestring-dns/shoestring/ota/slot"
)

// slotMountDir is where the inactive slot's partition is mounted while
// an update writes it.
const slotMountDir = "/run/shoestring/slot"

// otaLayout is the box's OTA layout for the node's update endpoints, or
// nil and why there are no updates: they need the boot disk (its slot
// partitions and boot partition), the data partition (the slot state and
// the last update's outcome must survive the reboot) and the slot this
// kernel came from.
func (b *box) otaLayout() (*agent.Layout, string) {
	switch {
	case b.disk == "":
		return nil, "no updates: " + b.dataProblem
	case b.dataDev == "":
		return nil, "no updates without the data partition (the slot state lives there): " + b.dataProblem
	case slot.Check(b.args.Slot) != nil:
		return nil, fmt.Sprintf("no updates: the kernel command line names no slot (shoestring.slot=%q)", b.args.Slot)
	case b.board.Boot == "":
		return nil, "no updates: the board description names no boot method"
	}
	l := &agent.Layout{
		Method:  b.board.Boot,
		Slots:   bootSlots{b},
		SlotDir: b.mountSlot,
		Booted:  b.args.Slot,
		Board:   b.board.Name,
		// The update transaction's reboots (into the new slot once; back
		// from a failed soak) are planned stops: the node drains first.
		Reboot: func(reason string) { b.requestPower(powerRequest{action: "reboot", reason: reason}) },
	}
	if b.board.Boot == board.Tryboot || b.board.Boot == board.Harness {
		// The Pi (and the QEMU harness, which boots the same way) reads
		// cmdline.txt from the slot's partition, and it names its slot:
		// the installer writes it for the slot it fills.
		bd, err := board.Get(b.board.Name)
		if err != nil {
			return nil, "no updates: " + err.Error()
		}
		id := b.args.DiskID
		l.Cmdline = func(s string) string { return bd.KernelCmdline(s, id) }
	}
	return l, ""
}

// slotMu serialises the users of the boot partition's mount (withSlots):
// boot-time recording and the agent's slot state calls.
var slotMu sync.Mutex

// mountSlot mounts slot s's partition read-write for the agent; release
// syncs and unmounts it. The running slot is refused: it is never
// written while it runs.
func (b *box) mountSlot(s string) (string, func() error, error) {
	if s == b.args.Slot {
		return "", nil, fmt.Errorf("slot %s is the running slot", s)
	}
	n, err := board.SlotPartition(s)
	if err != nil {
		return "", nil, err
	}
	dir := filepath.Join(slotMountDir, s)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", nil, err
	}
	dev := partitionDevice(b.disk, n)
	if err := unix.Mount(dev, dir, "vfat", unix.MS_NOATIME|unix.MS_NODEV|unix.MS_NOSUID|unix.MS_NOEXEC, "flush"); err != nil {
		return "", nil, fmt.Errorf("mount slot %s (%s): %w", s, dev, err)
	}
	b.log.Info("slot partition mounted for an update", "slot", s, "device", dev, "on", dir)
	release := func() error {
		unix.Sync()
		if err := unix.Unmount(dir, 0); err != nil {
			return fmt.Errorf("unmount slot %s: %w", s, err)
		}
		return nil
	}
	return dir, release, nil
}

// bootSlots is the board's slot state with the boot partition mounted
// around every call (withSlots), as the boot loader's switch lives there.
type bootSlots struct{ b *box }

func (s bootSlots) Method() board.BootMethod { return s.b.board.Boot }

func (s bootSlots) State() (st slot.State, err error) {
	err = s.b.readSlots(func(x slot.Slots) error { st, err = x.State(); return err })
	return st, err
}

func (s bootSlots) Install(n, version string) error {
	return s.b.withSlots(func(x slot.Slots) error { return x.Install(n, version) })
}

func (s bootSlots) TryOnce(n string) error {
	return s.b.withSlots(func(x slot.Slots) error { return x.TryOnce(n) })
}

func (s bootSlots) Commit(n string) error {
	return s.b.withSlots(func(x slot.Slots) error { return x.Commit(n) })
}

func (s bootSlots) MarkBad(n, reason string) error {
	return s.b.withSlots(func(x slot.Slots) error { return x.MarkBad(n, reason) })
}

func (s bootSlots) RecordBoot(booted string) (st slot.State, err error) {
	err = s.b.withSlots(func(x slot.Slots) error { st, err = x.RecordBoot(booted); return err })
	return st, err
}
