package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"

	"github.com/klauspost/compress/zstd"
)

// boardJSON is where the image builder stamps board and version into the
// initramfs (board.Runtime).
const boardJSON = "etc/shoestring/board.json"

// initramfsStamp returns the board name and version stamped in an
// initramfs (zstd-compressed newc cpio, as the image builder writes it),
// reading it as a stream; found is false when it is not such an archive
// or has no stamp.
func initramfsStamp(file string) (name, version string, found bool, err error) {
	f, err := os.Open(file)
	if err != nil {
		return "", "", false, err
	}
	defer f.Close()
	zr, err := zstd.NewReader(f, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true))
	if err != nil {
		return "", "", false, nil
	}
	defer zr.Close()
	r := bufio.NewReader(zr)
	hdr := make([]byte, 110)
	for {
		if _, err := io.ReadFull(r, hdr); err != nil || string(hdr[:6]) != "070701" {
			return "", "", false, nil
		}
		field := func(i int) int64 {
			n, _ := strconv.ParseUint(string(hdr[6+8*i:14+8*i]), 16, 32)
			return int64(n)
		}
		size, nameSize := field(6), field(11)
		nb := make([]byte, (110+nameSize+3)&^3-110)
		if _, err := io.ReadFull(r, nb); err != nil || nameSize == 0 {
			return "", "", false, nil
		}
		n := string(nb[:nameSize-1])
		if n == "TRAILER!!!" {
			return "", "", false, nil
		}
		padded := (size + 3) &^ 3
		if n != boardJSON {
			if _, err := io.CopyN(io.Discard, r, padded); err != nil {
				return "", "", false, nil
			}
			continue
		}
		data := make([]byte, size)
		if _, err := io.ReadFull(r, data); err != nil {
			return "", "", false, nil
		}
		var rt struct {
			Name    string `json:"name"`
			Version string `json:"version"`
		}
		if err := json.Unmarshal(data, &rt); err != nil {
			return "", "", false, fmt.Errorf("%s: %s: %v", file, boardJSON, err)
		}
		return rt.Name, rt.Version, true, nil
	}
}

// checkStamp refuses to bundle an initramfs stamped for another board or
// version; with required, also one that carries no stamp.
func checkStamp(initramfs, board, version string, required bool) error {
	name, v, found, err := initramfsStamp(initramfs)
	if err != nil {
		return err
	}
	if !found {
		if required {
			return errors.New(initramfs + ": no " + boardJSON + " in it (not an initramfs the image builder made?)")
		}
		return nil
	}
	if name != board || v != version {
		return fmt.Errorf("%s is stamped board %s version %s, not board %s version %s: rebuild the image (make image BOARD=%s VERSION=%s)", initramfs, name, v, board, version, board, version)
	}
	return nil
}
