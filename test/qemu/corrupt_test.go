package qemu

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shoestring-dns/shoestring/firmware/api"
	"github.com/shoestring-dns/shoestring/ota/agent/agenttest"
	"github.com/shoestring-dns/shoestring/ota/bundle"
)

// corruptBundle is a bad copy of a good bundle, and what its refusal
// must say.
type corruptBundle struct {
	what, file, want string
}

// corruptBundles makes bad copies of a good bundle (one per class of
// damage an operator's upload can suffer) and three well-formed bundles
// the box must refuse: one signed by a key it does not trust, one for
// another board, and a downgrade (v0.9.0, offered while the box runs slot
// B as installed from the good bundle, v1.0.0). Those three carry an initramfs 512 bytes longer
// than the good one (zeros after the cpio trailer), so that had one been
// written the slot's contents would show it. Damage lies in the first
// megabytes where it can (the box stops reading there); one flip is in
// the last byte, where only the whole stream tells.
func corruptBundles(t *testing.T, dir, boardName string, signer bundle.Signer, kernel, initrdName string, initrd []byte) []corruptBundle {
	t.Helper()
	// The good bundle they are copies of: newer than anything the box
	// runs or has refused, so that only the damage can refuse a copy.
	good := makeBundle(t, dir, boardName, "v1.6.0", signer, kernel, initrdName, initrd)
	data, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	m, err := bundle.Inspect(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	d := m.DataOffset()
	note := data[bundle.HeaderSize:d]
	var out []corruptBundle
	write := func(what string, b []byte, want string) {
		p := filepath.Join(dir, "corrupt-"+strings.ReplaceAll(what, " ", "-")+".bundle")
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		out = append(out, corruptBundle{what, p, want})
	}
	flip := func(off int64) []byte {
		b := bytes.Clone(data)
		b[off] ^= 0x10
		return b
	}
	// In the signed text: a digit of the kernel's hash.
	i := bytes.Index(note, []byte("\npart kernel "))
	if i < 0 {
		t.Fatalf("no kernel part line in the manifest:\n%s", note)
	}
	write("manifest bit", flip(bundle.HeaderSize+int64(i)+40), "signature check failed")
	// In the signature: a base64 character near the end of the note.
	write("signature bit", flip(d-6), "signature check failed")
	// In the kernel's second chunk, and in the bundle's last byte.
	write("kernel bit", flip(d+m.ChunkSize+m.ChunkSize/2), fmt.Sprintf("corrupt bundle: part %s chunk 1 ", m.Parts[0].Name))
	write("initramfs last bit", flip(int64(len(data))-1), fmt.Sprintf("corrupt bundle: part %s chunk %d ", initrdName, (m.Parts[1].Size-1)/m.ChunkSize))
	write("truncated", data[:d+2*m.ChunkSize+100], fmt.Sprintf("truncated bundle: ends in part %s chunk 2 ", m.Parts[0].Name))
	padded := append(bytes.Clone(initrd), make([]byte, 512)...)
	untrusted, _ := agenttest.Key(t, "not-trusted")
	wk := makeBundle(t, dir, boardName, "v1.3.0", untrusted, kernel, initrdName, padded)
	out = append(out, corruptBundle{"wrong key", wk, "no trusted key signed it"})
	wbDir := filepath.Join(dir, "wrong-board")
	if err := os.MkdirAll(wbDir, 0o755); err != nil {
		t.Fatal(err)
	}
	other := "qemu-amd64"
	if boardName == other {
		other = "atom64"
	}
	wb := makeBundle(t, wbDir, other, "v1.3.0", signer, kernel, initrdName, padded)
	out = append(out, corruptBundle{"wrong board", wb, "wrong board: bundle is for " + other})
	dg := makeBundle(t, dir, boardName, "v0.9.0", signer, kernel, initrdName, padded)
	out = append(out, corruptBundle{"downgrade", dg, "bundle version v0.9.0 is older than the running v1.0.0"})
	return out
}

// offerCorrupt uploads each bad bundle: each must be refused (422) with
// its reason, recorded as the last outcome, and leave the slots' records
// as they were.
func (x *otaBox) offerCorrupt(bad []corruptBundle) {
	x.t.Helper()
	before := x.slots()
	for _, c := range bad {
		start := time.Now()
		_, err := x.upload(c.file)
		took := time.Since(start)
		var ae *api.APIError
		if !errors.As(err, &ae) || ae.Code != http.StatusUnprocessableEntity || !strings.Contains(ae.Body.Error, c.want) {
			x.t.Errorf("%s: %v, want 422 naming %q", c.what, err, c.want)
			continue
		}
		s := x.slots()
		if s.Last == nil || s.Last.Result != "refused" || !strings.Contains(s.Last.Reason, c.want) {
			x.t.Errorf("%s: last outcome %+v, want refused naming %q", c.what, s.Last, c.want)
		}
		for i := range s.Slots {
			if s.Slots[i] != before.Slots[i] {
				x.t.Errorf("%s: slot %s changed: %+v, before %+v", c.what, s.Slots[i].Name, s.Slots[i], before.Slots[i])
			}
		}
		if s.Committed != before.Committed || s.Try != "" {
			x.t.Errorf("%s: committed %s (before %s), try %q", c.what, s.Committed, before.Committed, s.Try)
		}
		x.t.Logf("%s: refused in %s: %s", c.what, took.Round(100*time.Millisecond), ae.Body.Error)
	}
}

// slotFiles is a slot partition's files and their SHA-256s, read from
// the disk of a box that is off.
func slotFiles(t *testing.T, disk string, part int) map[string]string {
	t.Helper()
	im, err := OpenImage(disk)
	if err != nil {
		t.Fatal(err)
	}
	defer im.Close()
	names, err := im.List(part, "/")
	if err != nil {
		t.Fatalf("partition %d: %v", part, err)
	}
	out := map[string]string{}
	for _, n := range names {
		b, err := im.ReadFile(part, n)
		if err != nil {
			out[n] = "unreadable: " + err.Error()
			continue
		}
		h := sha256.Sum256(b)
		out[n] = hex.EncodeToString(h[:])
	}
	return out
}
