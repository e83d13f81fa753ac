// Package pid1 is what shoestring does when the kernel starts it as
// process 1 of the initramfs (/init). In order:
//
//  1. mount proc, sys, devtmpfs, devpts and tmpfs /run and /tmp; reopen
//     /dev/console for stdin, stdout and stderr; start reaping zombies;
//  2. start logging into a RAM ring (console too), set the clock no
//     earlier than the image's build time;
//  3. load the kernel modules the hardware asks for (sysfs modaliases
//     matched against the initramfs's modules.alias), rescanning until
//     the disk and the NICs appear; answer the kernel's own module
//     requests through /sbin/modprobe;
//  4. find the boot disk by its MBR signature, and on first boot grow the
//     data partition to the end of the disk and make its ext4 file
//     system; mount it on /perm; restore the last known time from it;
//  5. move first-boot provisioning files from the boot partition to
//     /perm/config; read the node config (or the last one that worked);
//     set the host name and /etc/resolv.conf;
//  6. run the node and the box's services under supervision with restart
//     backoff: NTP, log persistence (bounded size and write rate), kernel
//     messages, the hardware watchdog (fed only while the node is
//     healthy), periodic module rescans;
//  7. on a reboot or poweroff request (management API, or a signal):
//     cancel the node so it drains, stop, save the clock and logs, sync,
//     unmount, then reboot(2).
//
// PID 1 never exits: the kernel would panic. A failure it cannot get past
// is logged and ends in a reboot, and a Go panic in any goroutine kills
// the process, which panic=10 on the kernel command line turns into a
// reboot; the crash text is kept on the data partition for the next boot.
package pid1
