package kmod

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func TestGlob(t *testing.T) {
	for _, c := range []struct {
		pattern, s string
		want       bool
	}{
		{"pci:v00001AF4d00001000sv*sd*bc*sc*i*", "pci:v00001AF4d00001000sv00001AF4sd00000001bc02sc00i00", true},
		{"pci:v00001AF4d00001000sv*sd*bc*sc*i*", "pci:v00001AF4d00001001sv00001AF4sd00000001bc02sc00i00", false},
		{"virtio:d00000001v*", "virtio:d00000001v00001AF4", true},
		{"virtio:d00000002v*", "virtio:d00000001v00001AF4", false},
		{"of:N*T*Cbrcm,bcm2835-sdhost", "of:NmmcT(null)Cbrcm,bcm2835-sdhost", true},
		{"of:N*T*Cbrcm,bcm2835-sdhostC*", "of:NmmcT(null)Cbrcm,bcm2835-sdhost", false},
		{"usb:v0BDAp8153d[0-2]*", "usb:v0BDAp8153d3000", false},
		{"usb:v0BDAp8153d[0-3]*", "usb:v0BDAp8153d3000", true},
		{"usb:v0BDAp8153d[!0-2]*", "usb:v0BDAp8153d3000", true},
		{"a/b*", "a/b/c", true}, // path.Match would stop at '/'
		{"acpi*:PNP0501:*", "acpi:PNP0501:", true},
		{"?", "", false},
		{"*", "", true},
		{"[", "[", true},
	} {
		if got := Glob(c.pattern, c.s); got != c.want {
			t.Errorf("Glob(%q, %q) = %v, want %v", c.pattern, c.s, got, c.want)
		}
	}
}

func TestIndex(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("modules.dep", "kernel/drivers/net/virtio_net.ko: kernel/drivers/net/net_failover.ko kernel/net/core/failover.ko\n"+
		"kernel/drivers/net/net_failover.ko: kernel/net/core/failover.ko\nkernel/net/core/failover.ko:\n"+
		"kernel/fs/ext4/ext4.ko: kernel/fs/jbd2/jbd2.ko\nkernel/fs/jbd2/jbd2.ko:\nkernel/crypto/crc32c_generic.ko:\n"+
		"kernel/drivers/char/hw_random/virtio-rng.ko:\n")
	write("modules.alias", "alias virtio:d00000001v* virtio_net\nalias crypto-crc32c crc32c_generic\nalias fs-ext4 ext4\nalias virtio:d00000004v* virtio_rng\n")
	write("modules.softdep", "softdep ext4 pre: crc32c_generic\n")
	write("modules.builtin", "kernel/drivers/virtio/virtio_pci.ko\n")
	ix, err := ReadIndex(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := ix.Match("virtio:d00000001v00001AF4"); !reflect.DeepEqual(got, []string{"virtio_net"}) {
		t.Errorf("Match = %v", got)
	}
	if got := ix.Resolve("fs-ext4"); !reflect.DeepEqual(got, []string{"ext4"}) {
		t.Errorf("Resolve(fs-ext4) = %v", got)
	}
	if got := ix.Resolve("virtio-rng"); !reflect.DeepEqual(got, []string{"virtio_rng"}) {
		t.Errorf("Resolve(virtio-rng) = %v", got)
	}
	if pre, _ := ix.Soft("ext4"); !reflect.DeepEqual(pre, []string{"crc32c_generic"}) {
		t.Errorf("Soft(ext4) = %v", pre)
	}
	if !ix.Builtin("virtio-pci") || ix.Builtin("ext4") {
		t.Error("Builtin wrong")
	}
	if p, err := ix.Path("virtio_rng"); err != nil || filepath.Base(p) != "virtio-rng.ko" {
		t.Errorf("Path = %q, %v", p, err)
	}
}
