package slot

import (
	"encoding/binary"
	"os"
	"strings"
)

// SlotEnv is the environment variable the binary-slot launcher sets.
const SlotEnv = "SHOESTRING_SLOT"

// CmdlineSlot returns the shoestring.slot= argument of a kernel command
// line (board.KernelCmdline writes it into each slot's command line:
// grub.cfg's menu entries, the Pi's and the harness's cmdline.txt), ""
// when there is none.
func CmdlineSlot(cmdline string) (string, error) {
	for _, f := range strings.Fields(cmdline) {
		if v, ok := strings.CutPrefix(f, "shoestring.slot="); ok {
			if err := Check(v); err != nil {
				return "", err
			}
			return v, nil
		}
	}
	return "", nil
}

// Booted returns the slot the running system booted from, "" when that
// is unknown (a development run): SHOESTRING_SLOT when the binary-slot
// launcher started us, else shoestring.slot= on the kernel command line,
// else the partition the Pi firmware says it booted
// (/proc/device-tree/chosen/bootloader/partition).
func Booted() string {
	if v := os.Getenv(SlotEnv); Check(v) == nil {
		return v
	}
	if b, err := os.ReadFile("/proc/cmdline"); err == nil {
		if v, err := CmdlineSlot(string(b)); err == nil && v != "" {
			return v
		}
	}
	if b, err := os.ReadFile("/proc/device-tree/chosen/bootloader/partition"); err == nil && len(b) == 4 {
		if v, err := partSlot(int(binary.BigEndian.Uint32(b))); err == nil {
			return v
		}
	}
	return ""
}

// PiTrialBoot reports whether the Pi firmware booted this time with the
// tryboot flag set (/proc/device-tree/chosen/bootloader/tryboot).
func PiTrialBoot() bool {
	b, err := os.ReadFile("/proc/device-tree/chosen/bootloader/tryboot")
	return err == nil && len(b) == 4 && binary.BigEndian.Uint32(b) == 1
}
