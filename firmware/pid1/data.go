package pid1

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/diskfs/go-diskfs/backend/file"
	"github.com/diskfs/go-diskfs/filesystem/ext4"
	"golang.org/x/sys/unix"

	"github.com/shoestring-dns/shoestring/board"
)

// Where things live on a box.
const (
	permDir      = "/perm"        // the data partition
	bootDir      = "/boot"        // partition 1, mounted only while used
	configDir    = "/perm/config" // node.yaml and provisioned files
	configFile   = "/perm/config/node.yaml"
	authKeyFile  = "/perm/config/tailnet.authkey" // provisioned overlay key
	systemDir    = "/perm/system"                 // clock, crash output
	logDir       = "/perm/logs"                   // persisted log
	dataLabel    = "shoestring"                   // the data file system's label
	ext4Features = "has_journal,extent,64bit,flex_bg,metadata_csum,dir_index"
)

// prepareData makes the data partition ready to mount: on first boot
// (the partition is all zeros, as the image leaves it) it grows the
// partition to the end of the disk and makes an ext4 file system; an
// ext4 one is used as it is; anything else is left alone and reported,
// because it may be someone's data.
func prepareData(disk string, log *slog.Logger) (string, error) {
	dev := partitionDevice(disk, board.PartData)
	f, err := os.OpenFile(dev, os.O_RDWR, 0)
	if err != nil {
		return "", err
	}
	kind, err := fsKind(f)
	f.Close()
	if err != nil {
		return "", err
	}
	switch kind {
	case "ext4":
		return dev, nil
	case "unknown":
		return "", fmt.Errorf("%s holds something that is not ext4; not formatting it (clear its first 64 KiB to have it made afresh)", dev)
	}
	start := time.Now()
	if err := growData(disk, log); err != nil {
		// A partition that cannot grow is still usable at its size.
		log.Warn("data partition not grown", "err", err)
	}
	if err := mkfsData(dev, log); err != nil {
		return "", err
	}
	log.Info("data partition made", "device", dev, "took", time.Since(start).Round(time.Millisecond))
	return dev, nil
}

// growData extends partition 4 to the end of the disk and has the kernel
// re-read the table. Nothing of the disk is mounted yet, so BLKRRPART
// works; devtmpfs then re-creates the partition nodes.
func growData(disk string, log *slog.Logger) error {
	sectors, err := diskSectors(disk)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(disk, os.O_RDWR|os.O_SYNC, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	changed, size, err := growLastPartition(f, f, sectors)
	if err != nil || !changed {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := unix.IoctlSetInt(int(f.Fd()), unix.BLKRRPART, 0); err != nil {
		return fmt.Errorf("re-reading the partition table: %w", err)
	}
	dev := partitionDevice(disk, board.PartData)
	for i := 0; i < 50; i++ {
		if got, err := diskSectors(dev); err == nil && got == uint64(size) {
			break
		}
		// The partition's sysfs entry lives under its disk.
		if b, err := os.ReadFile(filepath.Join("/sys/block", filepath.Base(disk), filepath.Base(dev), "size")); err == nil && string(b) == fmt.Sprintf("%d\n", size) {
			if _, err := os.Stat(dev); err == nil {
				break
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	log.Info("data partition grown to the end of the disk", "size", fmt.Sprintf("%.1f GiB", float64(size)*512/(1<<30)))
	return nil
}

// mkfsData makes the ext4 file system (go-diskfs): 4 KiB blocks, a
// journal, metadata checksums, an inode per 256 KiB (the partition holds
// a few large files: the store, logs, zone files), at least 8192.
func mkfsData(dev string, log *slog.Logger) error {
	f, err := os.OpenFile(dev, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	// The device's size; Seek to the end works for block devices and
	// (unlike BLKGETSIZE64 into an int) on 32-bit boards too.
	size, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	inodes := uint32(max(size/(256<<10), 8192))
	log.Info("making ext4 file system", "device", dev, "size", fmt.Sprintf("%.1f GiB", float64(size)/(1<<30)), "features", ext4Features)
	fs, err := ext4.Create(file.New(f, false), size, 0, 512, &ext4.Params{
		SectorsPerBlock: 8,
		VolumeName:      dataLabel,
		InodeCount:      inodes,
		Features:        []ext4.FeatureOpt{ext4.WithFeatureMetadataChecksums(true), ext4.WithFeatureDirectoryIndices(true)},
	})
	if err != nil {
		return fmt.Errorf("mkfs ext4 on %s: %w", dev, err)
	}
	if err := fs.Close(); err != nil {
		return err
	}
	return f.Sync()
}

// mountData mounts the data partition on /perm.
func mountData(dev string) error {
	if err := os.MkdirAll(permDir, 0o755); err != nil {
		return err
	}
	// noatime: reads do not become writes. errors=remount-ro: a damaged
	// file system stops being written rather than getting worse.
	if err := unix.Mount(dev, permDir, "ext4", unix.MS_NOATIME|unix.MS_NODEV|unix.MS_NOSUID, "errors=remount-ro"); err != nil {
		return fmt.Errorf("mount %s on %s: %w", dev, permDir, err)
	}
	for _, d := range []string{configDir, systemDir, logDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	return nil
}

// statData reports the data file system's size and free space.
func statData() (size, free uint64) {
	var st unix.Statfs_t
	if err := unix.Statfs(permDir, &st); err != nil {
		return 0, 0
	}
	return st.Blocks * uint64(st.Bsize), st.Bavail * uint64(st.Bsize)
}
