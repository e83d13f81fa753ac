package pid1

import (
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/shoestring-dns/shoestring/board"
	"github.com/shoestring-dns/shoestring/ota/slot"
)

// slotStateFile is the slot state file (package ota/slot) on the data
// partition: versions, statuses, the slot on trial and its boot count.
var slotStateFile = filepath.Join(permDir, "ota", "slots.json")

// withSlots mounts the boot partition, where every boot method keeps its
// switch (grubenv, autoboot.txt, the harness's flag), and runs fn with
// the board's slot state; the state file is kept only when the data
// partition is mounted.
func (b *box) withSlots(fn func(slot.Slots) error) error { return b.mountSlots(false, fn) }

// readSlots is withSlots for a call that only reads (the state shown by
// `ctl slots`): the boot partition is mounted read-only and nothing is
// flushed, so a status poll costs the SD card no writes.
func (b *box) readSlots(fn func(slot.Slots) error) error { return b.mountSlots(true, fn) }

func (b *box) mountSlots(readOnly bool, fn func(slot.Slots) error) error {
	if b.disk == "" {
		return fmt.Errorf("no boot disk")
	}
	slotMu.Lock()
	defer slotMu.Unlock()
	state := ""
	if b.dataDev != "" {
		state = slotStateFile
	}
	s, err := slot.New(slot.Config{Method: b.board.Boot, Dir: bootDir, StateFile: state})
	if err != nil {
		return err
	}
	if err := os.MkdirAll(bootDir, 0o755); err != nil {
		return err
	}
	dev := partitionDevice(b.disk, board.PartBoot)
	flags := uintptr(unix.MS_NOATIME | unix.MS_NODEV | unix.MS_NOSUID | unix.MS_NOEXEC)
	if readOnly {
		flags |= unix.MS_RDONLY
	}
	if err := unix.Mount(dev, bootDir, "vfat", flags, "flush"); err != nil {
		return fmt.Errorf("mount %s: %w", dev, err)
	}
	defer func() {
		if !readOnly {
			unix.Sync()
		}
		unix.Unmount(bootDir, 0)
	}()
	return fn(s)
}

// recordBoot tells the slot state which slot this boot came from: it
// counts a trial's boots, and a boot of the committed slot while a
// trial was pending marks the trial's slot bad (it fell back).
func (b *box) recordBoot() {
	if b.args.Slot == "" {
		return
	}
	err := b.withSlots(func(s slot.Slots) error {
		before, _ := s.State()
		st, err := s.RecordBoot(b.args.Slot)
		if err != nil {
			return err
		}
		b.log.Info("slots", "booted", st.Booted, "committed", st.Committed, "trial", st.Trial, "boots", st.Boots)
		b.onTrial = st.Booted != st.Committed && st.Trial == st.Booted
		if t := before.Trial; t != "" && st.Slots[t].Status == slot.Bad {
			b.log.Error("trial boot failed; back on the committed slot", "slot", t, "reason", st.Slots[t].Reason)
		}
		return nil
	})
	if err != nil {
		b.log.Error("slot state not recorded", "err", err)
	}
}

// armTryboot makes the next boot (only) come from the other slot, the
// board's way, and returns the reboot(2) argument that boot needs (the
// Pi's flag travels with the reboot). A failed trial falls back to the
// committed slot.
func (b *box) armTryboot() (restartArg string, err error) {
	err = b.withSlots(func(s slot.Slots) error {
		if err := s.TryOnce(slot.Other(b.args.Slot)); err != nil {
			return err
		}
		st, err := s.State()
		restartArg = slot.RestartArg(st)
		return err
	})
	return restartArg, err
}

// trialRebootArg prepares a planned reboot: a trial running now is
// re-armed (slot.KeepTrial), so a deliberate reboot does not cost it. It
// returns the reboot(2) argument an armed trial needs (the Pi's flag).
func (b *box) trialRebootArg() string {
	if b.args.Slot == "" || b.disk == "" {
		return ""
	}
	arg := ""
	err := b.withSlots(func(s slot.Slots) error {
		kept, err := slot.KeepTrial(s, b.args.Slot)
		if err != nil {
			b.log.Error("trial not re-armed; the reboot goes back to the committed slot", "slot", b.args.Slot, "err", err)
		} else if kept {
			b.log.Info("deliberate reboot during a trial: re-armed, the trial goes on", "slot", b.args.Slot)
		}
		st, err := s.State()
		arg = slot.RestartArg(st)
		return err
	})
	if err != nil {
		b.log.Error("slot state before the reboot", "err", err)
	}
	return arg
}
