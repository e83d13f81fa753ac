// Command boot boots a board's disk image under QEMU with the console on
// the terminal: `make qemu BOARD=qemu-arm64` (after `make image`). It
// boots a copy of the image, grown to -size, so the built image stays
// pristine; -keep reuses the copy (its data partition persists). DNS and
// BGP are forwarded to loopback ports on the host; the management API is
// on the node's tailnet (overlay: in its node.yaml), as on any box. Quit
// with Ctrl-A X (QEMU's serial escape), or `shoestring ctl -api NAME
// poweroff` over the tailnet.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/shoestring-dns/shoestring/board"
	"github.com/shoestring-dns/shoestring/test/qemu"
)

func main() {
	name := flag.String("board", "qemu-amd64", "board")
	out := flag.String("out", "out", "where make image put the board's directory")
	size := flag.Int64("size", 2<<30, "size of the disk the image is copied onto, bytes")
	keep := flag.Bool("keep", false, "reuse the copy from the last boot (keeps its data partition)")
	dns := flag.Int("dns", 5353, "host port forwarded to the guest's DNS port 53 (UDP and TCP)")
	bgp := flag.Int("bgp", 10179, "host port forwarded to the guest's BGP port 179")
	flag.Parse()
	b, err := board.Get(*name)
	if err != nil {
		fail(err)
	}
	if b.QEMU == nil {
		fail(fmt.Errorf("board %s cannot be booted under QEMU", b.Name))
	}
	img := filepath.Join(*out, b.Name, "shoestring-"+b.Name+".img")
	disk := filepath.Join(*out, b.Name, "qemu-disk.img")
	if _, err := os.Stat(disk); err != nil || !*keep {
		if err := qemu.CopyDisk(img, disk, *size); err != nil {
			fail(fmt.Errorf("%w (run make image BOARD=%s first)", err, b.Name))
		}
	}
	fmt.Fprintf(os.Stderr, `booting %s (%s); forwarded: DNS 127.0.0.1:%d, BGP 127.0.0.1:%d
(the guest is 10.0.2.15, the host 10.0.2.2; management is on the node's tailnet)
Ctrl-A X quits QEMU.
`, disk, b.Description, *dns, *bgp)
	vm := &qemu.VM{Board: b, Disk: disk, Console: os.Stdout, Stdin: os.Stdin,
		Forwards: []qemu.Forward{
			{Proto: "udp", HostPort: *dns, GuestPort: 53}, {Proto: "tcp", HostPort: *dns, GuestPort: 53},
			{Proto: "tcp", HostPort: *bgp, GuestPort: 179},
		},
	}
	if err := vm.Start(context.Background()); err != nil {
		fail(err)
	}
	defer os.RemoveAll(vm.Dir)
	fmt.Fprintf(os.Stderr, "slot %s (partition %d): %s\n", vm.Slot.Slot, vm.Slot.Partition, vm.Slot.Cmdline)
	if err := vm.Wait(1 << 62); err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "boot:", err)
	os.Exit(1)
}
