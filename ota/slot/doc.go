// Package slot owns the A/B slot state of every boot method: which slot
// is committed, which one the next boot tries once, and what each slot
// holds (version; empty, installed, trying, committed, previous, bad).
//
// Its one job is to read and write that state crash-safely, in the form
// each boot loader reads it:
//
//   - GRUB (board.GRUBEnv): grub/grubenv on the boot partition, slot= and
//     try_slot=, the 1024-byte environment block GRUB's load_env and
//     save_env use (env.go);
//   - the Raspberry Pi firmware (board.Tryboot): autoboot.txt on the boot
//     partition with tryboot_a_b=1 and boot_partition= under [all] and
//     [tryboot], and the one-shot tryboot flag that travels with
//     reboot(2) as "0 tryboot" (autoboot.go);
//   - the QEMU test harness (board.Harness): the same autoboot.txt, the
//     one-shot flag being a file named "tryboot" on the boot partition;
//   - binary slots on a plain Linux host (Binary): two binaries and a
//     "committed" symlink in one directory, the one-shot flag a file.
//
// Beside the boot loader's own state, a small JSON state file (on the
// data partition on a box) keeps per-slot version and status, the slot on
// trial and a boot counter, for the OTA agent to build on. The boot
// loader's state is the truth for which slot is committed and which is
// armed; the state file is reconciled with it whenever it is read.
//
// Mounting the boot partition and rebooting are the caller's (PID 1's).
package slot
