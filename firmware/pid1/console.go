package pid1

import (
	"os"

	"golang.org/x/sys/unix"
)

// reopenConsole points stdin, stdout and stderr at /dev/console. The
// kernel opens it for init already when it exists in the initramfs, but
// when it did not (or the console changed) init would write into nothing;
// reopening also makes the console our controlling terminal, so a
// Ctrl-C on a serial console does not reach us as a signal.
func reopenConsole() error {
	f, err := os.OpenFile("/dev/console", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	for _, fd := range []int{0, 1, 2} {
		if err := unix.Dup3(int(f.Fd()), fd, 0); err != nil {
			return err
		}
	}
	return nil
}
