package agent

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/klauspost/compress/zstd"
)

// extractInit copies the file "init" of an initramfs — a newc cpio
// archive, zstd- (as image/ makes it) or gzip-compressed or plain — from
// r to w, streaming: one record header in memory, and the decompressor's
// window. It returns once init is copied.
func extractInit(r io.Reader, w io.Writer) error {
	br := bufio.NewReaderSize(r, 64<<10)
	magic, err := br.Peek(6)
	if err != nil {
		return fmt.Errorf("initramfs too short: %w", err)
	}
	var cpio io.Reader = br
	switch {
	case bytes.HasPrefix(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		d, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true), zstd.WithDecoderMaxWindow(64<<20))
		if err != nil {
			return err
		}
		defer d.Close()
		cpio = d
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		g, err := gzip.NewReader(br)
		if err != nil {
			return err
		}
		cpio = g
	case string(magic) == "070701":
	default:
		return fmt.Errorf("initramfs is neither a newc cpio archive nor zstd or gzip (starts %x)", magic)
	}
	return cpioFile(cpio, "init", w)
}

// cpioFile copies the regular file name out of a newc archive.
func cpioFile(r io.Reader, name string, w io.Writer) error {
	var off int64
	skip := func(n int64) error {
		c, err := io.CopyN(io.Discard, r, n)
		off += c
		return err
	}
	pad := func() error { return skip((4 - off%4) % 4) }
	hdr := make([]byte, 110)
	for {
		if _, err := io.ReadFull(r, hdr); err != nil {
			return fmt.Errorf("cpio header at %d: %w", off, err)
		}
		off += 110
		if string(hdr[:6]) != "070701" {
			return fmt.Errorf("cpio: bad record magic %q at %d", hdr[:6], off-110)
		}
		field := func(i int) (int64, error) {
			return strconv.ParseInt(string(hdr[6+8*i:14+8*i]), 16, 64)
		}
		mode, err1 := field(1)
		size, err2 := field(6)
		nameLen, err3 := field(11)
		if err := errors.Join(err1, err2, err3); err != nil || nameLen < 1 || nameLen > 4096 || size < 0 {
			return fmt.Errorf("cpio: bad record header at %d", off-110)
		}
		nb := make([]byte, nameLen)
		if _, err := io.ReadFull(r, nb); err != nil {
			return fmt.Errorf("cpio name: %w", err)
		}
		off += nameLen
		n := string(bytes.TrimRight(nb, "\x00"))
		if err := pad(); err != nil {
			return err
		}
		if n == "TRAILER!!!" {
			return fmt.Errorf("the initramfs has no /%s", name)
		}
		if (n == name || n == "./"+name || n == "/"+name) && mode&0o170000 == 0o100000 {
			c, err := io.CopyN(w, r, size)
			if err != nil {
				return fmt.Errorf("cpio: /%s: %w", name, err)
			}
			if c == 0 {
				return fmt.Errorf("cpio: /%s is empty", name)
			}
			return nil
		}
		if err := skip(size); err != nil {
			return fmt.Errorf("cpio: %s: %w", n, err)
		}
		if err := pad(); err != nil {
			return err
		}
	}
}
