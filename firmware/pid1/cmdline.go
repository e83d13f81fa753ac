package pid1

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/shoestring-dns/shoestring/ota/slot"
)

// bootArgs are the shoestring.* kernel command line arguments the boot
// loader passes (board.KernelCmdline writes them).
type bootArgs struct {
	// Slot is the slot this kernel was loaded from, "A" or "B".
	Slot string
	// DiskID is the MBR signature of the disk to use (0: any disk that has
	// the Shoestring layout).
	DiskID uint32
}

// parseCmdline reads shoestring.slot= and shoestring.disk=; anything else
// belongs to the kernel.
func parseCmdline(s string) (bootArgs, error) {
	var a bootArgs
	for _, f := range strings.Fields(s) {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			continue
		}
		switch k {
		case "shoestring.slot":
			if err := slot.Check(v); err != nil {
				return a, fmt.Errorf("shoestring.slot=%q: %w", v, err)
			}
			a.Slot = v
		case "shoestring.disk":
			n, err := strconv.ParseUint(v, 16, 32)
			if err != nil {
				return a, fmt.Errorf("shoestring.disk=%q: want 8 hex digits", v)
			}
			a.DiskID = uint32(n)
		}
	}
	return a, nil
}

func readCmdline() (bootArgs, string, error) {
	b, err := os.ReadFile("/proc/cmdline")
	if err != nil {
		return bootArgs{}, "", err
	}
	s := strings.TrimSpace(string(b))
	a, err := parseCmdline(s)
	return a, s, err
}
