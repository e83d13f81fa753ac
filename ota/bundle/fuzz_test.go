package bundle

import (
	"bytes"
	"crypto/ed25519"
	"testing"

	"golang.org/x/mod/sumdb/note"
)

// FuzzInstall feeds mutated bundles to Install: it must never panic, and
// whatever it accepts must carry exactly the signed manifest text and the
// true parts (only signatures by untrusted keys may differ).
func FuzzInstall(f *testing.F) {
	// A fixed key, so the corpus stays valid between runs.
	seed := bytes.Repeat([]byte{7}, ed25519.SeedSize)
	priv := ed25519.NewKeyFromSeed(seed)
	vkey, err := note.NewEd25519VerifierKey("fuzz", priv.Public().(ed25519.PublicKey))
	if err != nil {
		f.Fatal(err)
	}
	ks, err := ParseKeys(vkey)
	if err != nil {
		f.Fatal(err)
	}
	signer := fixedSigner{priv: priv, hash: keyHashOf(f, vkey)}
	ps := []testPart{
		{Kernel, "vmlinuz", randBytes(1, 1500)},
		{Initramfs, "initrd.img", randBytes(2, 1024)},
		{Boot, "config.txt", []byte("x=1\n")},
	}
	var buf bytes.Buffer
	m, err := Create(&buf, CreateOptions{Board: "rpi", Version: "v1.0.0", Built: built, ChunkSize: MinChunkSize, Signers: []Signer{signer}}, sources(ps))
	if err != nil {
		f.Fatal(err)
	}
	good := buf.Bytes()
	text := m.Note[:bytes.LastIndex(m.Note, []byte("\n\n"))+1]
	f.Add(good)
	f.Add(good[:len(good)-1])
	f.Add(append(bytes.Clone(good), 0))
	f.Add(good[:HeaderSize+20])
	f.Fuzz(func(t *testing.T, b []byte) {
		var tg recTarget
		got, err := Install(bytes.NewReader(b), ks, Options{Board: "rpi", Running: "v0.9.0"}, &tg)
		for i, w := range tg.parts {
			if i >= len(ps) || !bytes.HasPrefix(ps[i].data[w.start:], w.got.Bytes()) {
				t.Fatalf("target got bytes that are not the part's")
			}
		}
		if err != nil {
			return
		}
		if !bytes.HasPrefix(got.Note, text) || len(tg.parts) != len(ps) {
			t.Fatalf("accepted a bundle with another manifest")
		}
		for i, w := range tg.parts {
			if !w.committed || !bytes.Equal(w.got.Bytes(), ps[i].data) {
				t.Fatalf("accepted, part %d not the true one", i)
			}
		}
	})
}

type fixedSigner struct {
	priv ed25519.PrivateKey
	hash uint32
}

func (s fixedSigner) Name() string                    { return "fuzz" }
func (s fixedSigner) KeyHash() uint32                 { return s.hash }
func (s fixedSigner) Sign(msg []byte) ([]byte, error) { return ed25519.Sign(s.priv, msg), nil }

func keyHashOf(t testing.TB, vkey string) uint32 {
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	return v.KeyHash()
}
