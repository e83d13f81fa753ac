package bundle

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"strings"

	"golang.org/x/mod/sumdb/note"
)

// Keys are in the encoding of golang.org/x/mod/sumdb/note (the Go
// checksum database's): a public (verifier) key is one line
// "NAME+HASH+BASE64", HASH being 8 hex digits identifying the key and
// BASE64 the algorithm byte (1, ed25519) and the 32-byte public key; a
// private (signer) key is "PRIVATE+KEY+NAME+HASH+BASE64" with the
// ed25519 seed. A signature line in a bundle names its key by NAME and
// HASH.

// Signer signs bundles (note.Signer: an ed25519 private key with its
// name and hash).
type Signer = note.Signer

// Keys are the public keys a node trusts. More than one is how keys are
// rotated: a bundle is good when any trusted key signed it.
type Keys struct {
	list      []string
	verifiers note.Verifiers
}

// ParseKeys returns the trusted keys from their encodings
// ("NAME+HASH+BASE64"); duplicates count once.
func ParseKeys(vkeys ...string) (*Keys, error) {
	k := &Keys{}
	var vs []note.Verifier
	seen := map[string]bool{}
	for _, s := range vkeys {
		s = strings.TrimSpace(s)
		if seen[s] {
			continue
		}
		seen[s] = true
		v, err := note.NewVerifier(s)
		if err != nil {
			return nil, fmt.Errorf("public key %q: %v", s, err)
		}
		vs = append(vs, v)
		k.list = append(k.list, s)
	}
	if len(vs) == 0 {
		return nil, errors.New("no trusted public keys")
	}
	k.verifiers = note.VerifierList(vs...)
	return k, nil
}

// LoadKeys reads public key files: each holds one or more keys, one a
// line; blank lines and lines starting with # are skipped.
func LoadKeys(files ...string) (*Keys, error) {
	var all []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		n := 0
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			l := strings.TrimSpace(sc.Text())
			if l == "" || strings.HasPrefix(l, "#") {
				continue
			}
			if strings.HasPrefix(l, "PRIVATE+KEY+") {
				return nil, fmt.Errorf("%s: a private key, not a public one", f)
			}
			all = append(all, l)
			n++
		}
		if n == 0 {
			return nil, fmt.Errorf("%s: no public key", f)
		}
	}
	return ParseKeys(all...)
}

// List returns the trusted keys' encodings.
func (k *Keys) List() []string { return append([]string(nil), k.list...) }

// GenerateKey makes an ed25519 key pair named name (letters, digits and
// ".-_", no "+"): the private key's and the public key's encodings.
func GenerateKey(name string) (private, public string, err error) {
	if !validName(name) {
		return "", "", fmt.Errorf("key name %q: want letters, digits, '.', '-', '_'", name)
	}
	return note.GenerateKey(rand.Reader, name)
}

// ParseSigner returns the signer for a private key encoding and the
// encoding of its public key.
func ParseSigner(private string) (Signer, string, error) {
	private = strings.TrimSpace(private)
	s, err := note.NewSigner(private)
	if err != nil {
		return nil, "", fmt.Errorf("private key: %v", err)
	}
	// PRIVATE+KEY+NAME+HASH+BASE64(alg, seed): derive the public key.
	// (BASE64 may hold '+' too.)
	f := strings.SplitN(private, "+", 5)
	raw, err := base64.StdEncoding.DecodeString(f[4])
	if err != nil || len(raw) != 1+ed25519.SeedSize {
		return nil, "", errors.New("private key: not an ed25519 key")
	}
	pub := ed25519.NewKeyFromSeed(raw[1:]).Public().(ed25519.PublicKey)
	vkey, err := note.NewEd25519VerifierKey(s.Name(), pub)
	if err != nil {
		return nil, "", err
	}
	return s, vkey, nil
}

// LoadSigner reads a private key file.
func LoadSigner(file string) (Signer, string, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, "", err
	}
	s, pub, err := ParseSigner(string(b))
	if err != nil {
		return nil, "", fmt.Errorf("%s: %v", file, err)
	}
	return s, pub, nil
}
