package image

import (
	"encoding/binary"
	"fmt"
	"os"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/diskfs/go-diskfs/backend/file"
	"github.com/diskfs/go-diskfs/filesystem"
	"github.com/diskfs/go-diskfs/filesystem/fat32"
	"github.com/diskfs/go-diskfs/partition/mbr"

	"github.com/shoestring-dns/shoestring/board"
)

// Volume labels; PID 1 and the operator see them.
const (
	LabelBoot  = "SHOESTRING"
	LabelSlotA = "SLOT-A"
	LabelSlotB = "SLOT-B"
)

// diskSpec is what goes on a disk image.
type diskSpec struct {
	layout board.Layout
	diskID uint32
	epoch  time.Time
	boot   map[string][]byte // partition 1
	slotA  map[string][]byte // partition 2
	slotB  map[string][]byte // partition 3; empty until an update
	// mbrCode is boot code for bytes 0..439 of the MBR; gap is written
	// from sector 1 up to the first partition (GRUB's BIOS core image).
	mbrCode []byte
	gap     []byte
}

const (
	sector      = 512
	firstSector = 2048 // partition 1 at 1 MiB, the usual alignment
)

// partitions returns the MBR partitions of a layout: start and size in
// sectors.
func partitions(l board.Layout) []*mbr.Partition {
	mb := uint32(1 << 20 / sector)
	start := uint32(firstSector)
	var ps []*mbr.Partition
	for i, m := range []int{l.BootMiB, l.SlotMiB, l.SlotMiB, l.DataMiB} {
		typ := mbr.Fat32LBA
		if i == 3 {
			typ = mbr.Linux
		}
		ps = append(ps, &mbr.Partition{Index: i + 1, Bootable: i == 0, Type: typ, Start: start, Size: uint32(m) * mb})
		start += uint32(m) * mb
	}
	return ps
}

// writeDisk writes the image to path: MBR with the disk signature, three
// FAT32 file systems, the data partition left zeroed (PID 1 makes the
// ext4 file system on first boot, after growing the partition to the
// end of the real disk).
func writeDisk(filename string, spec *diskSpec) (int64, error) {
	ps := partitions(spec.layout)
	last := ps[len(ps)-1]
	size := int64(last.Start+last.Size) * sector
	os.Remove(filename)
	f, err := os.OpenFile(filename, os.O_CREATE|os.O_RDWR|os.O_EXCL, 0o644)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		return 0, err
	}
	b := file.New(f, false)
	table := &mbr.Table{Partitions: ps, LogicalSectorSize: sector, PhysicalSectorSize: sector}
	w, err := b.Writable()
	if err != nil {
		return 0, err
	}
	if err := table.Write(w, size); err != nil {
		return 0, err
	}
	for i, part := range []struct {
		label string
		files map[string][]byte
	}{{LabelBoot, spec.boot}, {LabelSlotA, spec.slotA}, {LabelSlotB, spec.slotB}} {
		p := ps[i]
		fs, err := fat32.Create(b, int64(p.Size)*sector, int64(p.Start)*sector, sector, part.label, true)
		if err != nil {
			return 0, fmt.Errorf("partition %d: %w", i+1, err)
		}
		if err := writeFiles(fs, part.files, spec.epoch); err != nil {
			return 0, fmt.Errorf("partition %d: %w", i+1, err)
		}
	}
	var sig [4]byte
	binary.LittleEndian.PutUint32(sig[:], spec.diskID)
	if _, err := f.WriteAt(sig[:], 440); err != nil {
		return 0, err
	}
	if len(spec.mbrCode) > 0 {
		if len(spec.mbrCode) > 440 {
			return 0, fmt.Errorf("MBR boot code is %d bytes, more than 440", len(spec.mbrCode))
		}
		if _, err := f.WriteAt(spec.mbrCode, 0); err != nil {
			return 0, err
		}
	}
	if len(spec.gap) > 0 {
		if len(spec.gap) > (firstSector-1)*sector {
			return 0, fmt.Errorf("boot loader core image is %d bytes, more than the %d before partition 1", len(spec.gap), (firstSector-1)*sector)
		}
		if _, err := f.WriteAt(spec.gap, sector); err != nil {
			return 0, err
		}
	}
	return size, f.Sync()
}

// writeFiles writes files (slash paths) into a FAT file system in sorted
// order with every timestamp at the build epoch, so that the same files
// make the same bytes.
func writeFiles(fs filesystem.FileSystem, files map[string][]byte, epoch time.Time) error {
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	dirs := map[string]bool{}
	for _, n := range names {
		p := "/" + strings.TrimPrefix(n, "/")
		for d := path.Dir(p); d != "/" && !dirs[d]; d = path.Dir(d) {
			dirs[d] = true
		}
	}
	var dl []string
	for d := range dirs {
		dl = append(dl, d)
	}
	sort.Strings(dl)
	for _, d := range dl {
		if err := fs.Mkdir(d); err != nil {
			return fmt.Errorf("mkdir %s: %w", d, err)
		}
	}
	for _, n := range names {
		p := "/" + strings.TrimPrefix(n, "/")
		fh, err := fs.OpenFile(p, os.O_CREATE|os.O_RDWR|os.O_TRUNC)
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		if _, err := fh.Write(files[n]); err != nil {
			fh.Close()
			return fmt.Errorf("%s: %w", p, err)
		}
		if err := fh.Close(); err != nil {
			return err
		}
		if err := fs.Chtimes(p, epoch, epoch, epoch); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
	}
	for _, d := range dl {
		if err := fs.Chtimes(d, epoch, epoch, epoch); err != nil {
			return fmt.Errorf("%s: %w", d, err)
		}
	}
	return nil
}
