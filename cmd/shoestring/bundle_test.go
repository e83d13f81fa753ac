package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// run runs `shoestring bundle ARGS` and returns its exit status and
// output.
func run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := bundleRun(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func mustRun(t *testing.T, want int, args ...string) string {
	t.Helper()
	code, out, errOut := run(t, args...)
	if code != want {
		t.Fatalf("bundle %s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, want, out, errOut)
	}
	return out + errOut
}

func TestBundleCommand(t *testing.T) {
	dir := t.TempDir()
	keys := filepath.Join(dir, "keys")
	mustRun(t, 0, "keygen", "-name", "old", "-out", keys)
	mustRun(t, 0, "keygen", "-name", "new", "-out", keys)
	st, err := os.Stat(filepath.Join(keys, "old.key"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("private key file: %v, %v", st.Mode(), err)
	}
	if out := mustRun(t, 1, "keygen", "-name", "old", "-out", keys); !strings.Contains(out, "exists") {
		t.Errorf("keygen over an existing key: %s", out)
	}
	other := filepath.Join(dir, "other")
	mustRun(t, 0, "keygen", "-out", other)

	kernel, initrd, cfg := filepath.Join(dir, "vmlinuz"), filepath.Join(dir, "initrd.img"), filepath.Join(dir, "config.txt")
	os.WriteFile(kernel, bytes.Repeat([]byte("kernel"), 500000), 0o644)
	os.WriteFile(initrd, bytes.Repeat([]byte("initramfs"), 100000), 0o644)
	os.WriteFile(cfg, []byte("arm_64bit=1\n"), 0o644)
	b := filepath.Join(dir, "shoestring-rpi-v1.2.0.bundle")
	mustRun(t, 0, "create", "-key", filepath.Join(keys, "old.key"), "-key", filepath.Join(keys, "new.key"),
		"-board", "rpi", "-version", "v1.2.0", "-built", "1700000000",
		"-kernel", kernel, "-initramfs", initrd, "-boot-file", "config.txt="+cfg, "-out", b)

	oldPub, newPub, otherPub := filepath.Join(keys, "old.pub"), filepath.Join(keys, "new.pub"), filepath.Join(other, "shoestring.pub")
	if out := mustRun(t, 0, "verify", "-key", oldPub, b); !strings.Contains(out, "good") {
		t.Errorf("verify: %s", out)
	}
	mustRun(t, 0, "verify", "-key", newPub, "-board", "rpi", "-running", "v1.1.0", b)
	mustRun(t, 0, "verify", "-key", otherPub, "-key", newPub, b)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-key", otherPub}, "signature"},
		{[]string{"-key", oldPub, "-board", "atom64"}, "wrong board"},
		{[]string{"-key", oldPub, "-running", "v1.2.0"}, "running version"},
		{[]string{"-key", oldPub, "-running", "v1.3.0"}, "older"},
		{[]string{"-key", filepath.Join(keys, "old.key")}, "private key"},
	} {
		if out := mustRun(t, 1, append(append([]string{"verify"}, c.args...), b)...); !strings.Contains(out, c.want) {
			t.Errorf("verify %v: %q, want %q", c.args, out, c.want)
		}
	}
	mustRun(t, 0, "verify", "-key", oldPub, "-running", "v1.3.0", "-allow-downgrade", b)
	out := mustRun(t, 0, "info", b)
	for _, want := range []string{"rpi", "v1.2.0", "2023-11-14T22:13:20Z", "config.txt", "old+", "new+", "NOT checked"} {
		if !strings.Contains(out, want) {
			t.Errorf("info lacks %q:\n%s", want, out)
		}
	}

	good, _ := os.ReadFile(b)
	bad := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, data, 0o644)
		return p
	}
	flipped := bytes.Clone(good)
	flipped[len(flipped)-3] ^= 0x10
	for name, c := range map[string]struct {
		data []byte
		want string
	}{
		"flipped": {flipped, "corrupt bundle: part config.txt chunk 0"},
		"cut":     {good[:len(good)-1], "truncated"},
		"longer":  {append(bytes.Clone(good), 0), "data after the last part"},
		"empty":   {nil, "truncated"},
	} {
		if out := mustRun(t, 1, "verify", "-key", oldPub, bad(name, c.data)); !strings.Contains(out, c.want) {
			t.Errorf("%s: %q, want %q", name, out, c.want)
		}
	}
	mustRun(t, 1, "info", bad("cut2", good[:len(good)-1]))
	mustRun(t, 1, "info", bad("junk", []byte("not a bundle at all")))

	// Usage errors exit 2; a refused create exits 1.
	mustRun(t, 2)
	mustRun(t, 2, "nonsense")
	mustRun(t, 2, "verify", b)
	mustRun(t, 2, "verify", "-key", oldPub)
	mustRun(t, 2, "create", "-board", "rpi")
	mustRun(t, 2, "info", "-bogus", b)
	mustRun(t, 1, "create", "-key", filepath.Join(keys, "old.key"), "-board", "rpi", "-version", "baa2855",
		"-kernel", kernel, "-initramfs", initrd, "-out", filepath.Join(dir, "x.bundle"))
	mustRun(t, 1, "create", "-key", filepath.Join(keys, "old.key"), "-board", "nosuch", "-version", "v1.0.0",
		"-kernel", kernel, "-initramfs", initrd, "-out", filepath.Join(dir, "x.bundle"))
	mustRun(t, 1, "create", "-key", oldPub, "-board", "rpi", "-version", "v1.0.0",
		"-kernel", kernel, "-initramfs", initrd, "-out", filepath.Join(dir, "x.bundle"))
	if _, err := os.Stat(filepath.Join(dir, "x.bundle")); err == nil {
		t.Error("a refused create left a bundle")
	}
}
