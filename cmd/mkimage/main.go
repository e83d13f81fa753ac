// Command mkimage builds a board's firmware images: `make image
// BOARD=rpi` runs `go run ./cmd/mkimage -board rpi`. Artifacts go to
// out/BOARD/ (the disk image, and the kernel and initramfs a slot holds);
// downloads are cached in out/cache. See image/ for what is built.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"time"

	"github.com/shoestring-dns/shoestring/board"
	"github.com/shoestring-dns/shoestring/image"
)

func main() {
	boardName := flag.String("board", "", "board to build, or \"all\" ("+strings.Join(board.Names(), ", ")+")")
	out := flag.String("out", "out", "output directory")
	cache := flag.String("cache", "", "download cache (default OUT/cache)")
	version := flag.String("version", "", "version stamped into the firmware (default: git describe)")
	epoch := flag.Int64("epoch", -1, "build time in Unix seconds (default: $SOURCE_DATE_EPOCH, else the last commit's time)")
	flag.Parse()
	if *boardName == "" {
		fmt.Fprintln(os.Stderr, "mkimage: -board is required (boards: "+strings.Join(board.Names(), ", ")+", all)")
		os.Exit(2)
	}
	var boards []*board.Board
	if *boardName == "all" {
		boards = board.All()
	} else {
		b, err := board.Get(*boardName)
		if err != nil {
			fmt.Fprintln(os.Stderr, "mkimage:", err)
			os.Exit(2)
		}
		boards = []*board.Board{b}
	}
	if *version == "" {
		*version = gitOutput("describe", "--always", "--dirty", "--tags")
		if *version == "" {
			*version = "dev"
		}
	}
	if *epoch < 0 {
		*epoch = defaultEpoch()
	}
	repo, err := os.Getwd()
	if err != nil {
		fmt.Fprintln(os.Stderr, "mkimage:", err)
		os.Exit(1)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	for _, b := range boards {
		_, err := image.Build(ctx, image.Options{
			Board: b, Repo: repo, Out: *out, Cache: *cache, Version: *version,
			Epoch: time.Unix(*epoch, 0), Log: os.Stdout,
		})
		if err != nil {
			fmt.Fprintf(os.Stderr, "mkimage: %s: %v\n", b.Name, err)
			os.Exit(1)
		}
	}
}

// defaultEpoch is SOURCE_DATE_EPOCH, else the time of the last commit,
// so that rebuilding a commit gives the same image.
func defaultEpoch() int64 {
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			return n
		}
	}
	if n, err := strconv.ParseInt(gitOutput("log", "-1", "--format=%ct"), 10, 64); err == nil {
		return n
	}
	return 0
}

func gitOutput(args ...string) string {
	b, err := exec.Command("git", args...).Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}
