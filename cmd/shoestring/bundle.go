package main

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	diskfs "github.com/diskfs/go-diskfs"

	"github.com/shoestring-dns/shoestring/board"
	"github.com/shoestring-dns/shoestring/ota/bundle"
)

// `shoestring bundle`: make, sign and check OTA bundles offline
// (ota/README.md). Exit status 0 good, 1 bad (the reason on stderr),
// 2 for a usage error.

const bundleUsage = `Usage:
  shoestring bundle keygen [-name NAME] -out DIR
      an ed25519 key pair: DIR/NAME.key (private, mode 0600), DIR/NAME.pub
  shoestring bundle create -key PRIV [-key PRIV2] -board B -version V
      -kernel F -initramfs F [-boot-file NAME=F ...] [-boot-files-from IMG]
      [-built TIME] [-stamped] -out FILE
      a signed bundle (make bundle runs it)
  shoestring bundle verify -key PUB [-key PUB2] [-board B]
      [-running V [-allow-downgrade]] FILE
      check signature, board, version and every chunk
  shoestring bundle info FILE
      the manifest, signatures NOT checked
`

// repeated is a flag given more than once.
type repeated []string

func (r *repeated) String() string     { return strings.Join(*r, ",") }
func (r *repeated) Set(s string) error { *r = append(*r, s); return nil }

// errUsage makes bundleRun exit 2.
type errUsage struct{ error }

func bundleRun(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, bundleUsage)
		return 2
	}
	cmds := map[string]func([]string, io.Writer) error{
		"keygen": bundleKeygen,
		"create": bundleCreate,
		"verify": bundleVerify,
		"info":   bundleInfo,
	}
	cmd, ok := cmds[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "shoestring bundle: unknown command %q\n\n%s", args[0], bundleUsage)
		return 2
	}
	if err := cmd(args[1:], stdout); err != nil {
		var u errUsage
		if errors.As(err, &u) {
			if !errors.Is(err, flag.ErrHelp) {
				fmt.Fprintf(stderr, "shoestring bundle %s: %v\n\n%s", args[0], err, bundleUsage)
			} else {
				fmt.Fprint(stderr, bundleUsage)
			}
			return 2
		}
		fmt.Fprintf(stderr, "shoestring bundle %s: %v\n", args[0], err)
		return 1
	}
	return 0
}

func bundleFlags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet("bundle "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}

func parseFlags(fs *flag.FlagSet, args []string, nargs int) error {
	if err := fs.Parse(args); err != nil {
		return errUsage{err}
	}
	if fs.NArg() != nargs {
		return errUsage{fmt.Errorf("want %d arguments after the flags, have %d", nargs, fs.NArg())}
	}
	return nil
}

func bundleKeygen(args []string, stdout io.Writer) error {
	fs := bundleFlags("keygen")
	name := fs.String("name", "shoestring", "key name (rotate by making a new one, e.g. shoestring-2027)")
	out := fs.String("out", "", "directory for NAME.key and NAME.pub")
	if err := parseFlags(fs, args, 0); err != nil {
		return err
	}
	if *out == "" {
		return errUsage{errors.New("-out is required")}
	}
	priv, pub, err := bundle.GenerateKey(*name)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(*out, 0o700); err != nil {
		return err
	}
	kf, pf := filepath.Join(*out, *name+".key"), filepath.Join(*out, *name+".pub")
	for _, f := range []string{kf, pf} {
		if _, err := os.Stat(f); err == nil {
			return fmt.Errorf("%s exists: not overwriting a key", f)
		}
	}
	f, err := os.OpenFile(kf, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(priv + "\n"); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.WriteFile(pf, []byte(pub+"\n"), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "private key %s (keep it secret)\npublic key  %s\n%s\n", kf, pf, pub)
	return nil
}

func bundleCreate(args []string, stdout io.Writer) error {
	fs := bundleFlags("create")
	var keys, bootFiles repeated
	fs.Var(&keys, "key", "private key file (repeat to sign with two keys while rotating)")
	boardName := fs.String("board", "", "board ("+strings.Join(board.Names(), ", ")+")")
	version := fs.String("version", "", "firmware version (semver-like, as stamped in the image)")
	kernel := fs.String("kernel", "", "kernel file")
	initramfs := fs.String("initramfs", "", "initramfs file")
	fs.Var(&bootFiles, "boot-file", "NAME=FILE: a further file of the slot (repeat)")
	fromImage := fs.String("boot-files-from", "", "disk image whose slot A's further files (all but kernel, initramfs and cmdline.txt) go in too")
	builtFlag := fs.String("built", "", "build time, Unix seconds or RFC 3339 (default $SOURCE_DATE_EPOCH, else now)")
	chunk := fs.Int64("chunk", bundle.DefaultChunkSize, "chunk size in bytes")
	stamped := fs.Bool("stamped", false, "require the initramfs to be stamped with this board and version (an image builder's; checked whenever it is)")
	out := fs.String("out", "", "bundle file to write")
	if err := parseFlags(fs, args, 0); err != nil {
		return err
	}
	for f, v := range map[string]string{"-board": *boardName, "-version": *version, "-kernel": *kernel, "-initramfs": *initramfs, "-out": *out} {
		if v == "" {
			return errUsage{fmt.Errorf("%s is required", f)}
		}
	}
	if len(keys) == 0 {
		return errUsage{errors.New("-key is required")}
	}
	b, err := board.Get(*boardName)
	if err != nil {
		return err
	}
	built, err := buildTime(*builtFlag)
	if err != nil {
		return err
	}
	// The version a node will compare against is the one its firmware
	// reports: the one stamped into the initramfs.
	if err := checkStamp(*initramfs, b.Name, *version, *stamped); err != nil {
		return err
	}
	var signers []bundle.Signer
	var pubs []string
	for _, k := range keys {
		s, pub, err := bundle.LoadSigner(k)
		if err != nil {
			return err
		}
		signers = append(signers, s)
		pubs = append(pubs, pub)
	}
	var parts []bundle.Source
	var closers []io.Closer
	defer func() {
		for _, c := range closers {
			c.Close()
		}
	}()
	addFile := func(role bundle.Role, name, file string) error {
		f, err := os.Open(file)
		if err != nil {
			return err
		}
		closers = append(closers, f)
		st, err := f.Stat()
		if err != nil {
			return err
		}
		if !st.Mode().IsRegular() {
			return fmt.Errorf("%s: not a regular file", file)
		}
		parts = append(parts, bundle.Source{Role: role, Name: name, Size: st.Size(), R: f})
		return nil
	}
	if err := addFile(bundle.Kernel, b.Boot.Kernel, *kernel); err != nil {
		return err
	}
	if err := addFile(bundle.Initramfs, b.Boot.Initrd, *initramfs); err != nil {
		return err
	}
	for _, bf := range bootFiles {
		name, file, ok := strings.Cut(bf, "=")
		if !ok || name == "" || file == "" {
			return errUsage{fmt.Errorf("-boot-file %q: want NAME=FILE", bf)}
		}
		if err := addFile(bundle.Boot, name, file); err != nil {
			return err
		}
	}
	if *fromImage != "" {
		extra, err := slotFiles(*fromImage, b, *kernel, *initramfs)
		if err != nil {
			return err
		}
		parts = append(parts, extra...)
	}

	tmp := *out + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	m, err := bundle.Create(f, bundle.CreateOptions{Board: b.Name, Version: *version, Built: built, ChunkSize: *chunk, Signers: signers}, parts)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	// Read it back as a node would, with the signers' public keys.
	ks, err := bundle.ParseKeys(pubs...)
	if err != nil {
		return err
	}
	if err := verifyFile(tmp, ks, bundle.Options{Board: b.Name}); err != nil {
		return fmt.Errorf("the bundle written does not verify: %v", err)
	}
	if err := os.Rename(tmp, *out); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: board %s, version %s, %d parts, %s, signed by %s\n",
		*out, m.Board, m.Version, len(m.Parts), mibs(m.Size()), strings.Join(m.SignedBy, ", "))
	return nil
}

// buildTime parses -built, defaulting to SOURCE_DATE_EPOCH, else now.
func buildTime(s string) (time.Time, error) {
	if s == "" {
		s = os.Getenv("SOURCE_DATE_EPOCH")
	}
	if s == "" {
		return time.Now(), nil
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.Unix(n, 0), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("build time %q: want Unix seconds or RFC 3339", s)
	}
	return t, nil
}

// slotFiles returns the files of slot A in a disk image other than the
// kernel and initramfs (which must be the ones given) and cmdline.txt
// (it names its slot: the installer writes it for the slot it fills):
// the Pi's firmware, config.txt and device trees.
func slotFiles(img string, b *board.Board, kernel, initramfs string) ([]bundle.Source, error) {
	d, err := diskfs.Open(img, diskfs.WithOpenMode(diskfs.ReadOnly))
	if err != nil {
		return nil, fmt.Errorf("%s: %v", img, err)
	}
	defer d.Close()
	fsys, err := d.GetFilesystem(board.PartSlotA)
	if err != nil {
		return nil, fmt.Errorf("%s: slot A (partition %d): %v", img, board.PartSlotA, err)
	}
	ents, err := fsys.ReadDir(".")
	if err != nil {
		return nil, fmt.Errorf("%s: slot A: %v", img, err)
	}
	var names []string
	for _, e := range ents {
		if !e.IsDir() {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	var out []bundle.Source
	for _, name := range names {
		f, err := fsys.OpenFile("/"+name, os.O_RDONLY)
		if err != nil {
			return nil, fmt.Errorf("%s: slot A: %s: %v", img, name, err)
		}
		data, err := io.ReadAll(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: slot A: %s: %v", img, name, err)
		}
		switch name {
		case "cmdline.txt":
			continue
		case b.Boot.Kernel, b.Boot.Initrd:
			given := map[string]string{b.Boot.Kernel: kernel, b.Boot.Initrd: initramfs}[name]
			g, err := os.ReadFile(given)
			if err != nil {
				return nil, err
			}
			if sha256.Sum256(g) != sha256.Sum256(data) {
				return nil, fmt.Errorf("%s: slot A's %s is not %s: image and files are from different builds", img, name, given)
			}
			continue
		}
		out = append(out, bundle.Source{Role: bundle.Boot, Name: name, Size: int64(len(data)), R: bytes.NewReader(data)})
	}
	return out, nil
}

func verifyFile(file string, keys *bundle.Keys, o bundle.Options) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = bundle.Verify(f, keys, o)
	return err
}

func bundleVerify(args []string, stdout io.Writer) error {
	fs := bundleFlags("verify")
	var keyFiles repeated
	fs.Var(&keyFiles, "key", "trusted public key file (repeat: any of them may have signed)")
	boardName := fs.String("board", "", "the board it must be for (default any)")
	running := fs.String("running", "", "the running version it must be newer than (default: no check)")
	downgrade := fs.Bool("allow-downgrade", false, "accept a version not newer than -running")
	if err := parseFlags(fs, args, 1); err != nil {
		return err
	}
	if len(keyFiles) == 0 {
		return errUsage{errors.New("-key is required")}
	}
	ks, err := bundle.LoadKeys(keyFiles...)
	if err != nil {
		return err
	}
	file := fs.Arg(0)
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	m, err := bundle.Verify(f, ks, bundle.Options{Board: *boardName, Running: *running, AllowDowngrade: *downgrade})
	if err != nil {
		return fmt.Errorf("%s: %v", file, err)
	}
	fmt.Fprintf(stdout, "%s: good: board %s, version %s, built %s, %d parts (%s), signed by %s\n",
		file, m.Board, m.Version, m.Built.UTC().Format(time.RFC3339), len(m.Parts), mibs(m.Size()), strings.Join(m.SignedBy, ", "))
	return nil
}

func bundleInfo(args []string, stdout io.Writer) error {
	fs := bundleFlags("info")
	if err := parseFlags(fs, args, 1); err != nil {
		return err
	}
	file := fs.Arg(0)
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	m, err := bundle.Inspect(f)
	if err != nil {
		return fmt.Errorf("%s: %v", file, err)
	}
	st, err := f.Stat()
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "file\t%s (%d bytes)\n", file, st.Size())
	fmt.Fprintf(tw, "board\t%s\n", m.Board)
	fmt.Fprintf(tw, "version\t%s\n", m.Version)
	fmt.Fprintf(tw, "built\t%s\n", m.Built.UTC().Format(time.RFC3339))
	fmt.Fprintf(tw, "chunk\t%d bytes\n", m.ChunkSize)
	fmt.Fprintf(tw, "manifest\t%d bytes at %d\n", len(m.Note), bundle.HeaderSize)
	fmt.Fprintf(tw, "signatures\t%s (NOT checked: use bundle verify)\n", strings.Join(m.Unverified, ", "))
	fmt.Fprintln(tw, "\nrole\tname\tsize\toffset\tchunks\tsha256")
	for _, p := range m.Parts {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%x\n", p.Role, p.Name, p.Size, p.Offset, len(p.Chunks), p.SHA256)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if st.Size() != m.Size() {
		return fmt.Errorf("%s: %d bytes, the manifest says %d", file, st.Size(), m.Size())
	}
	return nil
}

func mibs(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }
