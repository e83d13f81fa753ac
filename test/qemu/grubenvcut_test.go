package qemu

import (
	"bytes"
	"fmt"
	"os"
	"time"

	diskfs "github.com/diskfs/go-diskfs"

	"github.com/shoestring-dns/shoestring/board"
	"github.com/shoestring-dns/shoestring/ota/slot"
)

// grubenvOffset is where grubenv's block lies in a disk image: in
// partition 1, on a sector boundary, parsing as a GRUB environment
// block. GRUB's save_env and the node (ota/slot) both rewrite it in
// place, so it stays there.
func grubenvOffset(disk string) (int64, error) {
	d, err := diskfs.Open(disk, diskfs.WithOpenMode(diskfs.ReadOnly))
	if err != nil {
		return 0, err
	}
	defer d.Close()
	pt, err := d.GetPartitionTable()
	if err != nil {
		return 0, err
	}
	ps := pt.GetPartitions()
	if len(ps) < board.PartBoot {
		return 0, fmt.Errorf("%s: no partition %d", disk, board.PartBoot)
	}
	p := ps[board.PartBoot-1]
	f, err := os.Open(disk)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	region := make([]byte, p.GetSize())
	if _, err := f.ReadAt(region, p.GetStart()); err != nil {
		return 0, err
	}
	var found []int64
	head := []byte("# GRUB Environment Block\n")
	for i := 0; i+slot.EnvSize <= len(region); i += 512 {
		if !bytes.HasPrefix(region[i:], head) {
			continue
		}
		if e, err := slot.ParseEnv(region[i : i+slot.EnvSize]); err == nil {
			if _, ok := e.Get("slot"); ok {
				found = append(found, p.GetStart()+int64(i))
			}
		}
	}
	if len(found) != 1 {
		return 0, fmt.Errorf("%s: %d grubenv blocks with slot= in partition %d, want 1", disk, len(found), board.PartBoot)
	}
	return found[0], nil
}

// cutAtGrubenvWrite kills bt's QEMU the moment the disk's grubenv says
// try_slot=want: a power cut right after that write reached the disk
// (QEMU writes the guest's sectors to the image file as the guest issues
// them; the host reads it every millisecond). It returns when QEMU is
// gone, with how long after the call the write was seen; an error if QEMU
// exited first or within is up.
func cutAtGrubenvWrite(bt *boot, off int64, want string, within time.Duration) (time.Duration, error) {
	f, err := os.Open(bt.vm.Disk)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	start := time.Now()
	block := make([]byte, slot.EnvSize)
	for {
		if _, err := f.ReadAt(block, off); err == nil {
			if e, err := slot.ParseEnv(block); err == nil {
				if v, _ := e.Get("try_slot"); v == want {
					bt.vm.Kill()
					return time.Since(start), nil
				}
			}
		}
		select {
		case <-bt.vm.Done():
			return 0, fmt.Errorf("QEMU exited before grubenv said try_slot=%s", want)
		case <-time.After(time.Millisecond):
		}
		if time.Since(start) > within {
			return 0, fmt.Errorf("grubenv did not say try_slot=%s within %s", want, within)
		}
	}
}
