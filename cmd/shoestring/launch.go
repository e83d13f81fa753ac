package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"syscall"

	"github.com/shoestring-dns/shoestring/ota/slot"
)

// launchMain is the boot loader of binary slots on a plain Linux host:
// systemd's ExecStart runs `shoestring launch -slots DIR -- run ...`, and
// this picks the slot to run (slot.SelectBinary: the armed trial once,
// otherwise the committed one), then replaces itself with that binary,
// SHOESTRING_SLOT naming the slot. A trial binary that crashes, hangs
// past systemd's watchdog or fails its soak is followed, at systemd's
// restart, by the committed one — the grub.cfg of a host.
func launchMain(args []string) error {
	fs := flag.NewFlagSet("launch", flag.ExitOnError)
	dir := fs.String("slots", "", "binary A/B slots directory (shoestring.A, shoestring.B, committed, try)")
	fs.Parse(args)
	if *dir == "" || fs.NArg() == 0 {
		return errors.New("usage: shoestring launch -slots DIR -- run -config FILE -slots DIR -board BOARD")
	}
	path, s, err := slot.SelectBinary(*dir)
	if err != nil {
		return fmt.Errorf("launch: %w", err)
	}
	env := append(os.Environ(), slot.SlotEnv+"="+s)
	argv := append([]string{path}, fs.Args()...)
	return syscall.Exec(path, argv, env)
}
