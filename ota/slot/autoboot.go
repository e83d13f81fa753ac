package slot

import (
	"bufio"
	"fmt"
	"strconv"
	"strings"

	"github.com/shoestring-dns/shoestring/board"
)

// The Raspberry Pi firmware's autoboot.txt (Raspberry Pi documentation,
// config_txt/autoboot.adoc): at most 512 bytes on the first FAT
// partition, with the [all], [none] and [tryboot] filters.
// boot_partition under [all] is the partition every boot uses; when the
// one-shot tryboot flag is set (`reboot "0 tryboot"`: reboot(2) RESTART2,
// which the firmware driver passes over the mailbox), the [tryboot]
// filter passes and its boot_partition wins. tryboot_a_b=1 makes the
// firmware read the chosen partition's config.txt rather than
// tryboot.txt, so the slots need no tryboot-specific files. The firmware
// clears the flag before it starts the kernel: any reset after that goes
// back to [all]. Committing is rewriting the file with the partitions
// swapped. At run time /proc/device-tree/chosen/bootloader/tryboot and
// .../partition say whether this boot was a trial, and from where.
const (
	autobootMax = 512
	// TrybootRestartArg is the reboot(2) LINUX_REBOOT_CMD_RESTART2
	// argument that sets the Pi's one-shot tryboot flag; "0" is the
	// default partition, so autoboot.txt chooses.
	TrybootRestartArg = "0 tryboot"
)

// Autoboot is autoboot.txt as the A/B scheme uses it.
type Autoboot struct {
	TrybootAB bool // tryboot_a_b=1 under [all]
	Partition int  // boot_partition under [all]: the committed slot
	Try       int  // boot_partition under [tryboot]: the slot a tryboot boots
}

// ParseAutoboot reads autoboot.txt. Settings under [none] are ignored,
// as the firmware ignores them; an unknown filter or setting is an error
// rather than a guess at what the firmware would do with it.
func ParseAutoboot(text string) (Autoboot, error) {
	var a Autoboot
	if len(text) > autobootMax {
		return a, fmt.Errorf("autoboot.txt is %d bytes; the firmware reads only %d", len(text), autobootMax)
	}
	section := "all"
	sc := bufio.NewScanner(strings.NewReader(text))
	for n := 1; sc.Scan(); n++ {
		l := strings.TrimSpace(sc.Text())
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		if strings.HasPrefix(l, "[") && strings.HasSuffix(l, "]") {
			section = strings.ToLower(l[1 : len(l)-1])
			switch section {
			case "all", "none", "tryboot":
			default:
				return a, fmt.Errorf("autoboot.txt line %d: filter %s (autoboot.txt takes [all], [none] and [tryboot])", n, l)
			}
			continue
		}
		k, v, ok := strings.Cut(l, "=")
		if !ok {
			return a, fmt.Errorf("autoboot.txt line %d: %q is not NAME=VALUE", n, l)
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if section == "none" {
			continue
		}
		var dst *int
		ab := 0
		switch {
		case k == "boot_partition" && section == "all":
			dst = &a.Partition
		case k == "boot_partition" && section == "tryboot":
			dst = &a.Try
		case k == "tryboot_a_b" && section == "all":
			dst = &ab
		default:
			return a, fmt.Errorf("autoboot.txt line %d: %s under [%s] is not part of the A/B scheme", n, k, section)
		}
		i, err := strconv.Atoi(v)
		if err != nil {
			return a, fmt.Errorf("autoboot.txt line %d: %s=%q is not a number", n, k, v)
		}
		*dst = i
		if dst == &ab {
			a.TrybootAB = i == 1
		}
	}
	if err := sc.Err(); err != nil {
		return a, fmt.Errorf("autoboot.txt: %w", err)
	}
	if a.Partition == 0 {
		return a, fmt.Errorf("autoboot.txt: no boot_partition under [all]")
	}
	if a.Try == 0 {
		a.Try = a.Partition
	}
	return a, nil
}

// Marshal writes autoboot.txt.
func (a Autoboot) Marshal() []byte {
	ab := 0
	if a.TrybootAB {
		ab = 1
	}
	return []byte(fmt.Sprintf("[all]\ntryboot_a_b=%d\nboot_partition=%d\n[tryboot]\nboot_partition=%d\n", ab, a.Partition, a.Try))
}

// AutobootFor is autoboot.txt with the given slot committed and the
// other one behind the tryboot flag.
func AutobootFor(committed string) (Autoboot, error) {
	p, err := board.SlotPartition(committed)
	if err != nil {
		return Autoboot{}, err
	}
	t, _ := board.SlotPartition(Other(committed))
	return Autoboot{TrybootAB: true, Partition: p, Try: t}, nil
}

// Slots of autoboot.txt: the committed slot and the one a tryboot boots.
func (a Autoboot) Slots() (committed, try string, err error) {
	if committed, err = partSlot(a.Partition); err != nil {
		return "", "", fmt.Errorf("autoboot.txt [all]: %w", err)
	}
	if try, err = partSlot(a.Try); err != nil {
		return "", "", fmt.Errorf("autoboot.txt [tryboot]: %w", err)
	}
	return committed, try, nil
}

func partSlot(p int) (string, error) {
	switch p {
	case board.PartSlotA:
		return A, nil
	case board.PartSlotB:
		return B, nil
	}
	return "", fmt.Errorf("boot_partition=%d is not a slot (slot A is %d, B is %d)", p, board.PartSlotA, board.PartSlotB)
}
