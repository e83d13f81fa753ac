package pid1

import (
	"encoding/json"
	"os"

	"github.com/shoestring-dns/shoestring/board"
)

// boardFile is where the image builder puts the board's run-time
// description.
const boardFile = "/etc/shoestring/board.json"

// readBoard returns the board description; a missing or broken file
// (an initramfs not made by the image builder) gives a generic board.
func readBoard() (board.Runtime, error) {
	var rt board.Runtime
	b, err := os.ReadFile(boardFile)
	if err == nil {
		err = json.Unmarshal(b, &rt)
	}
	if err != nil {
		return board.Runtime{Name: "unknown", NICs: []string{"eth0"}, Watchdog: "/dev/watchdog", Load: []string{"ext4", "vfat"}}, err
	}
	return rt, nil
}
