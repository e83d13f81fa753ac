package qemu

import (
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	diskfs "github.com/diskfs/go-diskfs"
	"github.com/diskfs/go-diskfs/disk"
	"github.com/diskfs/go-diskfs/filesystem"

	"github.com/shoestring-dns/shoestring/board"
	"github.com/shoestring-dns/shoestring/ota/slot"
)

// Image is a disk image the harness reads and writes as an operator's
// laptop would: the FAT partitions through go-diskfs, nothing mounted.
type Image struct {
	Path string
	d    *disk.Disk
}

// OpenImage opens a disk image for reading and writing.
func OpenImage(p string) (*Image, error) {
	d, err := diskfs.Open(p, diskfs.WithOpenMode(diskfs.ReadWrite))
	if err != nil {
		return nil, err
	}
	return &Image{Path: p, d: d}, nil
}

// Close closes the image.
func (im *Image) Close() error { return im.d.Close() }

func (im *Image) fs(part int) (filesystem.FileSystem, error) {
	fsys, err := im.d.GetFilesystem(part)
	if err != nil {
		return nil, fmt.Errorf("partition %d: %w", part, err)
	}
	return fsys, nil
}

// ReadFile reads a file from a FAT partition.
func (im *Image) ReadFile(part int, name string) ([]byte, error) {
	fsys, err := im.fs(part)
	if err != nil {
		return nil, err
	}
	f, err := fsys.OpenFile("/"+strings.TrimPrefix(name, "/"), os.O_RDONLY)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

// WriteFile writes a file into a FAT partition, making its directory.
func (im *Image) WriteFile(part int, name string, data []byte) error {
	fsys, err := im.fs(part)
	if err != nil {
		return err
	}
	p := "/" + strings.TrimPrefix(name, "/")
	if dir := path.Dir(p); dir != "/" {
		if err := fsys.Mkdir(dir); err != nil {
			return err
		}
	}
	f, err := fsys.OpenFile(p, os.O_CREATE|os.O_RDWR|os.O_TRUNC)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// Remove deletes a file from a FAT partition.
func (im *Image) Remove(part int, name string) error {
	fsys, err := im.fs(part)
	if err != nil {
		return err
	}
	return fsys.Remove("/" + strings.TrimPrefix(name, "/"))
}

// List lists a directory of a FAT partition.
func (im *Image) List(part int, dir string) ([]string, error) {
	fsys, err := im.fs(part)
	if err != nil {
		return nil, err
	}
	// go-diskfs's ReadDir takes io/fs paths ("." for the root).
	p := strings.Trim(dir, "/")
	if p == "" {
		p = "."
	}
	ents, err := fsys.ReadDir(p)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out, nil
}

// Exists reports whether a file is on a FAT partition.
func (im *Image) Exists(part int, name string) bool {
	_, err := im.ReadFile(part, name)
	return err == nil
}

// Partition returns where a partition starts in the image and its size,
// in bytes, as the partition table says now (PID 1 grows the data
// partition on first boot).
func (im *Image) Partition(part int) (start, size int64, err error) {
	t, err := im.d.GetPartitionTable()
	if err != nil {
		return 0, 0, err
	}
	for _, p := range t.GetPartitions() {
		if p.GetIndex() == part {
			return p.GetStart(), p.GetSize(), nil
		}
	}
	return 0, 0, fmt.Errorf("%s: no partition %d", im.Path, part)
}

// BootSlot is what the harness boots: the Pi firmware's choice from
// autoboot.txt, the [tryboot] partition when the one-shot "tryboot" flag
// file is on partition 1 (deleted as the Pi firmware clears its flag).
type BootSlot struct {
	Partition int
	Slot      string
	Kernel    []byte
	Initrd    []byte
	Cmdline   string
}

// ChooseSlot reads autoboot.txt (package ota/slot's parser, as the box
// writes it) and the chosen slot's files.
func (im *Image) ChooseSlot(b *board.Board) (*BootSlot, error) {
	auto, err := im.ReadFile(board.PartBoot, "autoboot.txt")
	if err != nil {
		return nil, fmt.Errorf("autoboot.txt: %w", err)
	}
	ab, err := slot.ParseAutoboot(string(auto))
	if err != nil {
		return nil, err
	}
	part := ab.Partition
	if im.Exists(board.PartBoot, slot.TrybootFlag) {
		part = ab.Try
		if err := im.Remove(board.PartBoot, slot.TrybootFlag); err != nil {
			return nil, fmt.Errorf("clearing the tryboot flag: %w", err)
		}
	}
	s := &BootSlot{Partition: part, Slot: map[int]string{board.PartSlotA: "A", board.PartSlotB: "B"}[part]}
	if s.Kernel, err = im.ReadFile(part, b.Boot.Kernel); err != nil {
		return nil, fmt.Errorf("slot partition %d: %s: %w", part, b.Boot.Kernel, err)
	}
	if s.Initrd, err = im.ReadFile(part, b.Boot.Initrd); err != nil {
		return nil, fmt.Errorf("slot partition %d: %s: %w", part, b.Boot.Initrd, err)
	}
	cl, err := im.ReadFile(part, "cmdline.txt")
	if err != nil {
		return nil, fmt.Errorf("slot partition %d: cmdline.txt: %w", part, err)
	}
	s.Cmdline = strings.TrimSpace(string(cl))
	return s, nil
}
