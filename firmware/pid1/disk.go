package pid1

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"unicode"
)

// mbrEntry is one primary partition of an MBR.
type mbrEntry struct {
	Type        byte
	Start, Size uint32 // sectors
}

// readMBR returns the disk signature and the four primary partitions.
func readMBR(r io.ReaderAt) (uint32, [4]mbrEntry, error) {
	var parts [4]mbrEntry
	b := make([]byte, 512)
	if _, err := r.ReadAt(b, 0); err != nil {
		return 0, parts, err
	}
	if b[510] != 0x55 || b[511] != 0xaa {
		return 0, parts, errors.New("no MBR")
	}
	for i := range parts {
		e := b[446+16*i:]
		parts[i] = mbrEntry{Type: e[4], Start: binary.LittleEndian.Uint32(e[8:]), Size: binary.LittleEndian.Uint32(e[12:])}
	}
	return binary.LittleEndian.Uint32(b[440:]), parts, nil
}

// findDisk returns the whole-disk device whose MBR has the signature id
// (the boot loader passes it as shoestring.disk=); with id 0, the first
// disk with four partitions, the last one Linux.
func findDisk(id uint32) (string, error) {
	ents, err := os.ReadDir("/sys/block")
	if err != nil {
		return "", err
	}
	for _, e := range ents {
		name := e.Name()
		if strings.HasPrefix(name, "loop") || strings.HasPrefix(name, "ram") || strings.HasPrefix(name, "zram") {
			continue
		}
		dev := "/dev/" + name
		f, err := os.Open(dev)
		if err != nil {
			continue
		}
		sig, parts, err := readMBR(f)
		f.Close()
		if err != nil {
			continue
		}
		if (id != 0 && sig == id) || (id == 0 && parts[3].Type == 0x83 && parts[0].Size > 0) {
			return dev, nil
		}
	}
	return "", fmt.Errorf("no disk with MBR signature %08x", id)
}

// partitionDevice names partition n of a disk: sda1, but mmcblk0p1,
// nvme0n1p1 and vda1 (a p when the disk name ends in a digit).
func partitionDevice(disk string, n int) string {
	if r := []rune(disk); len(r) > 0 && unicode.IsDigit(r[len(r)-1]) {
		return fmt.Sprintf("%sp%d", disk, n)
	}
	return fmt.Sprintf("%s%d", disk, n)
}

// diskSectors is the disk's size in 512-byte sectors, from sysfs.
func diskSectors(disk string) (uint64, error) {
	b, err := os.ReadFile(filepath.Join("/sys/block", filepath.Base(disk), "size"))
	if err != nil {
		return 0, err
	}
	return strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
}

// growLastPartition extends partition 4 of the MBR in f to the end of a
// disk of the given size (in sectors, aligned down to 1 MiB), and reports
// whether it changed. MBR sizes are 32-bit: at most 2 TiB are used.
func growLastPartition(f io.ReaderAt, w io.WriterAt, disk uint64) (bool, uint32, error) {
	_, parts, err := readMBR(f)
	if err != nil {
		return false, 0, err
	}
	p := parts[3]
	if p.Size == 0 {
		return false, 0, errors.New("no partition 4")
	}
	end := disk &^ 2047
	if end > 1<<32-1 {
		end = (1<<32 - 1) &^ 2047
	}
	if end <= uint64(p.Start)+uint64(p.Size) {
		return false, p.Size, nil
	}
	size := uint32(end - uint64(p.Start))
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], size)
	if _, err := w.WriteAt(b[:], 446+16*3+12); err != nil {
		return false, 0, err
	}
	return true, size, nil
}

// fsKind says what a partition holds, from its first 64 KiB: "ext4" (the
// superblock magic), "empty" (all zero, as the image builder leaves it),
// or "unknown" — which is never formatted over.
func fsKind(r io.ReaderAt) (string, error) {
	b := make([]byte, 64<<10)
	if _, err := r.ReadAt(b, 0); err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	if binary.LittleEndian.Uint16(b[1024+0x38:]) == 0xef53 {
		return "ext4", nil
	}
	if bytes.Count(b, []byte{0}) == len(b) {
		return "empty", nil
	}
	return "unknown", nil
}
