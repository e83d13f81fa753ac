package agent_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shoestring-dns/shoestring/board"
	"github.com/shoestring-dns/shoestring/ota/agent"
	"github.com/shoestring-dns/shoestring/ota/agent/agenttest"
	"github.com/shoestring-dns/shoestring/ota/bundle"
	"github.com/shoestring-dns/shoestring/ota/slot"
)

var methods = []board.BootMethod{board.GRUBEnv, slot.Binary, board.Harness}

// checkInstalled asserts slot B holds p and is armed for one trial.
func checkInstalled(t *testing.T, r *agenttest.Rig, a *agent.Agent, version string, p agenttest.Parts) {
	t.Helper()
	dir := r.SlotDirs[slot.B]
	want := map[string][]byte{}
	if r.Method == slot.Binary {
		want[slot.BinaryName(slot.B)] = p.Init
	} else {
		want["vmlinux"], want["initrd.img"] = p.Kernel, p.Initramfs
		want["cmdline.txt"] = []byte("console=ttyS0 shoestring.slot=B\n")
	}
	for name, w := range want {
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil || !bytes.Equal(got, w) {
			t.Errorf("slot B %s: %d bytes, want %d (%v)", name, len(got), len(w), err)
		}
	}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".") {
			t.Errorf("temporary file left in the slot: %s", e.Name())
		}
	}
	st, err := r.Slots.State()
	if err != nil {
		t.Fatal(err)
	}
	if b := st.Slots[slot.B]; b.Version != version || b.Status != slot.Trying || st.Trial != slot.B || st.Committed != slot.A {
		t.Errorf("slot state after install: %+v", st)
	}
	if r.Method != board.Tryboot && st.Try != slot.B {
		t.Errorf("slot B not armed: %+v", st)
	}
	if p := a.Progress(); p.State != agent.Armed || p.Version != version || p.Slot != slot.B || p.Bytes != p.Total || p.Total == 0 {
		t.Errorf("progress after install: %+v", p)
	}
	if o, ok := a.Last(); !ok || o.Result != agent.ResultInstalled || o.Version != version {
		t.Errorf("last outcome: %+v", o)
	}
}

func TestInstallGood(t *testing.T) {
	for _, m := range methods {
		t.Run(string(m), func(t *testing.T) {
			r := agenttest.New(t, m)
			a := r.Agent(t, "v1.0.0")
			p := agenttest.MakeParts(t, "v1.1.0")
			b := r.Bundle(t, agenttest.Board, "v1.1.0", p, nil)
			o, err := a.Install(context.Background(), bytes.NewReader(b), agent.Request{})
			if err != nil {
				t.Fatal(err)
			}
			if o.Slot != slot.B || o.Bytes != int64(len(b)) {
				t.Errorf("outcome %+v", o)
			}
			checkInstalled(t, r, a, "v1.1.0", p)
			if m == board.GRUBEnv {
				env, _ := os.ReadFile(filepath.Join(r.Boot, "grub", "grubenv"))
				if !bytes.Contains(env, []byte("try_slot=B\n")) || !bytes.Contains(env, []byte("slot=A\n")) {
					t.Errorf("grubenv:\n%s", bytes.TrimRight(env, "#"))
				}
			}
			// The outcome survives a restart of the agent.
			o2, ok := r.Agent(t, "v1.0.0").Last()
			if !ok || o2.Result != agent.ResultInstalled || o2.Version != "v1.1.0" {
				t.Errorf("outcome read back: %+v", o2)
			}
			// Installing again re-arms the slot with the newer version.
			p3 := agenttest.MakeParts(t, "v1.2.0")
			if _, err := a.Install(context.Background(), bytes.NewReader(r.Bundle(t, agenttest.Board, "v1.2.0", p3, nil)), agent.Request{}); err != nil {
				t.Fatal(err)
			}
			checkInstalled(t, r, a, "v1.2.0", p3)
		})
	}
}

// TestInstallRemovesStale: a slot takes exactly the new bundle's files.
// What the old version had and the new one does not carry (a device
// tree), and a temporary file a power cut left in an earlier install, are
// gone; a directory stays.
func TestInstallRemovesStale(t *testing.T) {
	for _, m := range []board.BootMethod{board.GRUBEnv, board.Harness} {
		t.Run(string(m), func(t *testing.T) {
			r := agenttest.New(t, m)
			dir := r.SlotDirs[slot.B]
			for _, name := range []string{"bcm2710-old.dtb", ".bcm2710-cut.dtb.ota"} {
				if err := os.WriteFile(filepath.Join(dir, name), []byte("old "+name), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.Mkdir(filepath.Join(dir, "overlays"), 0o755); err != nil {
				t.Fatal(err)
			}
			a := r.Agent(t, "v1.0.0")
			p := agenttest.MakeParts(t, "v1.1.0")
			if _, err := a.Install(context.Background(), bytes.NewReader(r.Bundle(t, agenttest.Board, "v1.1.0", p, nil)), agent.Request{}); err != nil {
				t.Fatal(err)
			}
			checkInstalled(t, r, a, "v1.1.0", p)
			ents, err := os.ReadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, e := range ents {
				names = append(names, e.Name())
			}
			if want := []string{"cmdline.txt", "initrd.img", "overlays", "vmlinux"}; !reflect.DeepEqual(names, want) {
				t.Errorf("slot B after the install: %v, want %v", names, want)
			}
		})
	}
}

// badBundles are the classes of bad bundle and the reason each must give.
func badBundles(t *testing.T, r *agenttest.Rig) []struct {
	name, want string
	b          []byte
} {
	p := agenttest.MakeParts(t, "v1.1.0")
	good := r.Bundle(t, agenttest.Board, "v1.1.0", p, nil)
	m, err := bundle.Inspect(bytes.NewReader(good))
	if err != nil {
		t.Fatal(err)
	}
	flip := func(off int64) []byte {
		c := bytes.Clone(good)
		c[off] ^= 0x10
		return c
	}
	other, _, _ := bundle.GenerateKey("other")
	otherSigner, _, _ := bundle.ParseSigner(other)
	kernel, initrd := m.Parts[0], m.Parts[1]
	return []struct {
		name, want string
		b          []byte
	}{
		{"wrong key", "no trusted key signed it", r.Bundle(t, agenttest.Board, "v1.1.0", p, otherSigner)},
		{"flip in header", "not a shoestring bundle", flip(3)},
		{"flip in manifest", "signature check failed", flip(bundle.HeaderSize + 40)},
		{"flip in the kernel", "corrupt bundle: part vmlinux chunk 3", flip(kernel.Offset + 3*agenttest.ChunkSize + 7)},
		{"flip in the last chunk", "corrupt bundle: part initrd.img", flip(initrd.Offset + initrd.Size - 1)},
		{"truncated in the kernel", "truncated bundle: ends in part vmlinux", good[:kernel.Offset+kernel.Size/2]},
		{"truncated in the initramfs", "truncated bundle: ends in part initrd.img", good[:initrd.Offset+initrd.Size-1]},
		{"trailing data", "data after the last part", append(bytes.Clone(good), 0)},
		{"wrong board", "wrong board: bundle is for rpi", r.Bundle(t, "rpi", "v1.1.0", p, nil)},
		{"downgrade", "version refused", r.Bundle(t, agenttest.Board, "v0.9.0", p, nil)},
		{"same version", "version refused", r.Bundle(t, agenttest.Board, "v1.0.0", p, nil)},
	}
}

func TestBadBundlesLeaveTheSlot(t *testing.T) {
	for _, m := range methods {
		t.Run(string(m), func(t *testing.T) {
			r := agenttest.New(t, m)
			a := r.Agent(t, "v1.0.0")
			stBefore, _ := r.Slots.State()
			for _, c := range badBundles(t, r) {
				before := r.Hashes(t, slot.B)
				_, err := a.Install(context.Background(), bytes.NewReader(c.b), agent.Request{Source: c.name})
				var re *agent.RefusedError
				if !errors.As(err, &re) || !strings.Contains(err.Error(), c.want) {
					t.Errorf("%s: got %v, want a refusal with %q", c.name, err, c.want)
				}
				if after := r.Hashes(t, slot.B); !reflect.DeepEqual(before, after) {
					t.Errorf("%s: slot B changed:\nbefore %v\nafter  %v", c.name, before, after)
				}
				if st, _ := r.Slots.State(); !reflect.DeepEqual(st, stBefore) {
					t.Errorf("%s: slot state changed:\nbefore %+v\nafter  %+v", c.name, stBefore, st)
				}
				o, ok := a.Last()
				if !ok || o.Result != agent.ResultRefused || !strings.Contains(o.Reason, c.want) || o.Source != c.name {
					t.Errorf("%s: last outcome %+v", c.name, o)
				}
				if p := a.Progress(); p.State != agent.Failed || !strings.Contains(p.Error, c.want) {
					t.Errorf("%s: progress %+v", c.name, p)
				}
			}
			// The reason is on disk, for the next boot to report.
			o, _ := r.Agent(t, "v1.0.0").Last()
			if o.Result != agent.ResultRefused || !strings.Contains(o.Reason, "version refused") {
				t.Errorf("outcome read back: %+v", o)
			}
			// A downgrade the operator asked for is installed.
			p := agenttest.MakeParts(t, "v0.9.0")
			if _, err := a.Install(context.Background(), bytes.NewReader(r.Bundle(t, agenttest.Board, "v0.9.0", p, nil)), agent.Request{AllowDowngrade: true}); err != nil {
				t.Fatal(err)
			}
			checkInstalled(t, r, a, "v0.9.0", p)
		})
	}
}

func TestNoKeysRefuses(t *testing.T) {
	r := agenttest.New(t, board.GRUBEnv)
	_, kerr := agent.LoadKeys(nil)
	a, err := agent.New(agent.Config{Layout: r.Layout(), KeysError: kerr})
	if err != nil {
		t.Fatal(err)
	}
	before := r.Hashes(t, slot.B)
	b := r.Bundle(t, agenttest.Board, "v1.1.0", agenttest.MakeParts(t, "v1.1.0"), nil)
	_, err = a.Install(context.Background(), bytes.NewReader(b), agent.Request{})
	if err == nil || !strings.Contains(err.Error(), "ota.keys") {
		t.Fatalf("no keys: %v", err)
	}
	if !reflect.DeepEqual(before, r.Hashes(t, slot.B)) {
		t.Error("slot B changed")
	}
}

func TestOnTrialRefuses(t *testing.T) {
	r := agenttest.New(t, slot.Binary)
	l := r.Layout()
	l.Booted = slot.B // running B on trial, A committed
	a, err := agent.New(agent.Config{Layout: l, Keys: r.Keys})
	if err != nil {
		t.Fatal(err)
	}
	b := r.Bundle(t, agenttest.Board, "v1.1.0", agenttest.MakeParts(t, "v1.1.0"), nil)
	if _, err := a.Install(context.Background(), bytes.NewReader(b), agent.Request{}); err == nil || !strings.Contains(err.Error(), "on trial") {
		t.Fatalf("install while on trial: %v", err)
	}
}

// cutServer serves b, cutting the connection after the given numbers of
// bytes of the first responses, and records each request's Range.
type cutServer struct {
	b    []byte
	cuts []int
	mu   sync.Mutex
	reqs []string
}

func (s *cutServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	n := len(s.reqs)
	s.reqs = append(s.reqs, r.Header.Get("Range"))
	s.mu.Unlock()
	if n < len(s.cuts) {
		var start int64
		if rg := r.Header.Get("Range"); rg != "" {
			fmt.Sscanf(rg, "bytes=%d-", &start)
			w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, len(s.b)-1, len(s.b)))
			w.Header().Set("Content-Length", fmt.Sprint(int64(len(s.b))-start))
			w.WriteHeader(http.StatusPartialContent)
		} else {
			w.Header().Set("Content-Length", fmt.Sprint(len(s.b)))
		}
		w.Write(s.b[start : start+int64(s.cuts[n])])
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler) // the connection is closed mid-body
	}
	http.ServeContent(w, r, "x.bundle", time.Time{}, bytes.NewReader(s.b))
}

func TestDownloadResumes(t *testing.T) {
	for _, m := range []board.BootMethod{board.GRUBEnv, slot.Binary} {
		t.Run(string(m), func(t *testing.T) {
			r := agenttest.New(t, m)
			a := r.Agent(t, "v1.0.0")
			p := agenttest.MakeParts(t, "v1.1.0")
			b := r.Bundle(t, agenttest.Board, "v1.1.0", p, nil)
			mf, _ := bundle.Inspect(bytes.NewReader(b))
			kernel, initrd := mf.Parts[0], mf.Parts[1]
			// Cut in the kernel's 5th chunk, then in the initramfs.
			cut1 := int(kernel.Offset + 4*agenttest.ChunkSize + 100)
			cut2 := int(initrd.Offset + 6*agenttest.ChunkSize + 5 - (kernel.Offset + 4*agenttest.ChunkSize))
			srv := &cutServer{b: b, cuts: []int{cut1, cut2}}
			ts := httptest.NewServer(srv)
			defer ts.Close()
			o, err := a.Download(context.Background(), ts.URL+"/x.bundle", agent.Request{})
			if err != nil {
				t.Fatal(err)
			}
			checkInstalled(t, r, a, "v1.1.0", p)
			if pr := a.Progress(); pr.Resumes != 2 || o.Source != ts.URL+"/x.bundle" {
				t.Errorf("progress %+v, outcome %+v", pr, o)
			}
			want := []string{"", fmt.Sprintf("bytes=%d-", kernel.Offset+4*agenttest.ChunkSize), fmt.Sprintf("bytes=%d-", initrd.Offset+6*agenttest.ChunkSize)}
			if m == slot.Binary {
				// Kernel bytes are only verified; the initramfs restarts
				// from its first byte (a decompressor cannot resume).
				want[2] = fmt.Sprintf("bytes=%d-", initrd.Offset)
			}
			if !reflect.DeepEqual(srv.reqs, want) {
				t.Errorf("requests' ranges %q, want %q", srv.reqs, want)
			}
		})
	}
}

func TestDownloadTruncatedIsRefused(t *testing.T) {
	r := agenttest.New(t, board.GRUBEnv)
	a := r.Agent(t, "v1.0.0")
	b := r.Bundle(t, agenttest.Board, "v1.1.0", agenttest.MakeParts(t, "v1.1.0"), nil)
	before := r.Hashes(t, slot.B)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write(b[:len(b)-5000]) }))
	defer ts.Close()
	_, err := a.Download(context.Background(), ts.URL, agent.Request{})
	if !errors.Is(err, bundle.ErrTruncated) {
		t.Fatalf("truncated download: %v", err)
	}
	if !reflect.DeepEqual(before, r.Hashes(t, slot.B)) {
		t.Error("slot B changed")
	}
	ts404 := httptest.NewServer(http.NotFoundHandler())
	defer ts404.Close()
	if _, err := a.Download(context.Background(), ts404.URL, agent.Request{}); err == nil || !strings.Contains(err.Error(), "404") {
		t.Fatalf("404: %v", err)
	}
	if o, _ := a.Last(); o.Result != agent.ResultFailed {
		t.Errorf("404 outcome %+v", o)
	}
}

// TestBinaryNeedsInit: a signed bundle whose initramfs has no /init
// cannot fill a binary slot; the slot is as it was.
func TestBinaryNeedsInit(t *testing.T) {
	r := agenttest.New(t, slot.Binary)
	a := r.Agent(t, "v1.0.0")
	p := agenttest.MakeParts(t, "v1.1.0")
	p.Initramfs = []byte("070701 is not enough of an archive")
	before := r.Hashes(t, slot.B)
	_, err := a.Install(context.Background(), bytes.NewReader(r.Bundle(t, agenttest.Board, "v1.1.0", p, nil)), agent.Request{})
	if err == nil || !strings.Contains(err.Error(), "initramfs") {
		t.Fatalf("want an initramfs error, got %v", err)
	}
	if !reflect.DeepEqual(before, r.Hashes(t, slot.B)) {
		t.Error("slot B changed")
	}
	if o, _ := a.Last(); o.Result != agent.ResultFailed {
		t.Errorf("outcome %+v", o)
	}
}
