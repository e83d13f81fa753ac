package slot

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shoestring-dns/shoestring/board"
)

// rig is one boot method with a simulation of its boot loader choosing
// the slot at power-on, exactly as the real one does.
type rig struct {
	s    Slots
	dir  string
	boot func(t *testing.T, restartArg string) string
}

func newRig(t *testing.T, m board.BootMethod) *rig {
	dir := t.TempDir()
	r := &rig{dir: dir}
	switch m {
	case board.GRUBEnv:
		os.MkdirAll(filepath.Join(dir, "grub"), 0o755)
		b, _ := GRUBEnv("slot", "A")
		os.WriteFile(grubenvPath(dir), b, 0o644)
		r.boot = func(t *testing.T, _ string) string { return grubCfgBoot(t, grubenvPath(dir)) }
	case board.Tryboot, board.Harness:
		ab, _ := AutobootFor(A)
		os.WriteFile(filepath.Join(dir, "autoboot.txt"), ab.Marshal(), 0o644)
		r.boot = func(t *testing.T, arg string) string {
			b, err := os.ReadFile(filepath.Join(dir, "autoboot.txt"))
			if err != nil {
				t.Fatal(err)
			}
			ab, err := ParseAutoboot(string(b))
			if err != nil {
				t.Fatal(err)
			}
			part := ab.Partition
			flag := filepath.Join(dir, TrybootFlag)
			if m == board.Tryboot && arg == TrybootRestartArg {
				part = ab.Try // the firmware clears its flag as it boots
			}
			if m == board.Harness && exists(flag) {
				os.Remove(flag)
				part = ab.Try
			}
			s, err := partSlot(part)
			if err != nil {
				t.Fatal(err)
			}
			return s
		}
	case Binary:
		for _, s := range []string{A, B} {
			os.WriteFile(filepath.Join(dir, BinaryName(s)), []byte("#!/bin/true\n"), 0o755)
		}
		r.boot = func(t *testing.T, _ string) string {
			_, s, err := SelectBinary(dir)
			if err != nil {
				t.Fatal(err)
			}
			return s
		}
	}
	s, err := New(Config{Method: m, Dir: dir, StateFile: filepath.Join(t.TempDir(), "ota", "slots.json")})
	if err != nil {
		t.Fatal(err)
	}
	r.s = s
	return r
}

// grubCfgBoot runs the slot choice of image/grub.go's grub.cfg on a
// grubenv: load_env; slot defaults to A; a non-empty try_slot is booted
// once and cleared first (set try_slot=; save_env try_slot).
func grubCfgBoot(t *testing.T, path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	e, err := ParseEnv(b)
	if err != nil {
		t.Fatal(err)
	}
	slot, _ := e.Get("slot")
	if slot != "B" {
		slot = "A"
	}
	boot := slot
	if try, _ := e.Get("try_slot"); try != "" {
		boot = try
		if !grubSaveEnv(b, "try_slot", "") {
			t.Fatal("save_env try_slot failed")
		}
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if boot != "B" {
		boot = "A"
	}
	return boot
}

var methods = []board.BootMethod{board.GRUBEnv, board.Tryboot, board.Harness, Binary}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func state(t *testing.T, s Slots) State {
	t.Helper()
	st, err := s.State()
	must(t, err)
	return st
}

// reboot is a reboot: the restart argument the state asks for, the boot
// loader's choice, PID 1 recording the boot.
func (r *rig) reboot(t *testing.T) State {
	t.Helper()
	booted := r.boot(t, RestartArg(state(t, r.s)))
	st, err := r.s.RecordBoot(booted)
	must(t, err)
	if st.Booted != booted {
		t.Fatalf("booted %s, state says %s", booted, st.Booted)
	}
	return st
}

func TestTryOnceCommitRollback(t *testing.T) {
	for _, m := range methods {
		t.Run(string(m), func(t *testing.T) {
			r := newRig(t, m)
			s := r.s
			st := r.reboot(t)
			if st.Committed != A || st.Booted != A || st.Try != "" || st.Slots[A].Status != Committed || st.Slots[B].Status != Empty {
				t.Fatalf("fresh: %+v", st)
			}
			if err := s.TryOnce(A); err == nil {
				t.Error("trying the committed slot was accepted")
			}
			if err := s.Install(A, "v9"); err == nil {
				t.Error("installing over the committed slot was accepted")
			}

			// A trial that ends without a commit fails: it is marked bad.
			must(t, s.Install(B, "v2"))
			must(t, s.TryOnce(B))
			st = state(t, s)
			if st.Try != B || st.Trial != B || st.Slots[B].Status != Trying || st.Slots[B].Version != "v2" {
				t.Fatalf("armed: %+v", st)
			}
			if st = r.reboot(t); st.Booted != B || st.Boots != 1 || st.Try != "" || st.Committed != A {
				t.Fatalf("trial boot: %+v", st)
			}
			st = r.reboot(t) // a reset before commit: the one-shot is spent
			if st.Booted != A || st.Slots[B].Status != Bad || st.Trial != "" || !strings.Contains(st.Slots[B].Reason, "without a commit after 1 boot") {
				t.Fatalf("after a failed trial: %+v", st)
			}
			if err := s.TryOnce(B); err == nil || !strings.Contains(err.Error(), "bad") {
				t.Fatalf("a bad slot was tried again: %v", err)
			}
			if err := s.Commit(B); err == nil {
				t.Fatal("a bad slot was committed")
			}

			// A new version; a deliberate reboot during its trial re-arms
			// it and does not cost the trial; then it is committed.
			must(t, s.Install(B, "v3"))
			must(t, s.TryOnce(B))
			r.reboot(t)
			must(t, s.TryOnce(B))
			if st = r.reboot(t); st.Booted != B || st.Boots != 2 || st.Slots[B].Status != Trying {
				t.Fatalf("re-armed trial: %+v", st)
			}
			must(t, s.Commit(B))
			st = state(t, s)
			if st.Committed != B || st.Trial != "" || st.Slots[B].Status != Committed || st.Slots[A].Status != Previous || st.Slots[B].Version != "v3" {
				t.Fatalf("committed: %+v", st)
			}
			for i := 0; i < 2; i++ {
				if st = r.reboot(t); st.Booted != B || st.Slots[B].Status != Committed {
					t.Fatalf("after commit, boot %d: %+v", i, st)
				}
			}
			if err := s.MarkBad(B, "x"); err == nil {
				t.Error("the committed slot was marked bad")
			}

			// Marking an armed slot bad disarms it.
			must(t, s.Install(A, "v4"))
			must(t, s.TryOnce(A))
			must(t, s.MarkBad(A, "soak failed: SOA serial behind"))
			if st = r.reboot(t); st.Booted != B || st.Slots[A].Status != Bad || st.Slots[A].Reason != "soak failed: SOA serial behind" {
				t.Fatalf("after marking the armed slot bad: %+v", st)
			}
		})
	}
}

// The boot loader's state is written first and is the truth: a commit
// whose state file was never written reads back as committed.
func TestLoaderIsTheTruth(t *testing.T) {
	for _, m := range methods {
		t.Run(string(m), func(t *testing.T) {
			r := newRig(t, m)
			must(t, r.s.Install(B, "v2"))
			must(t, r.s.TryOnce(B))
			r.reboot(t)
			sw := r.s.(*switcher)
			must(t, sw.l.commit(B)) // the cut: loader written, state file not
			st := state(t, r.s)
			if st.Committed != B || st.Slots[B].Status != Committed || st.Slots[A].Status != Previous || st.Trial != "" {
				t.Fatalf("%+v", st)
			}
			if st = r.reboot(t); st.Booted != B || st.Slots[B].Status != Committed {
				t.Fatalf("%+v", st)
			}
		})
	}
}

func TestNoStateFile(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "grub"), 0o755)
	b, _ := GRUBEnv("slot", "A")
	os.WriteFile(grubenvPath(dir), b, 0o644)
	s, err := New(Config{Method: board.GRUBEnv, Dir: dir})
	must(t, err)
	must(t, s.TryOnce(B))
	if st := state(t, s); st.Try != B || st.Committed != A {
		t.Fatalf("%+v", st)
	}
	got, _ := os.ReadFile(grubenvPath(dir))
	if len(got) != EnvSize || !strings.HasPrefix(string(got), "# GRUB Environment Block\nslot=A\ntry_slot=B\n#") {
		t.Fatalf("grubenv %q", got[:60])
	}
	must(t, s.Commit(B))
	got, _ = os.ReadFile(grubenvPath(dir))
	if !strings.HasPrefix(string(got), "# GRUB Environment Block\nslot=B\ntry_slot=\n#") {
		t.Fatalf("grubenv %q", got[:60])
	}
}

func TestBrokenLoaderState(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "grub"), 0o755)
	os.WriteFile(grubenvPath(dir), []byte("# GRUB Environment Block\nslot=A\n"), 0o644)
	s, _ := New(Config{Method: board.GRUBEnv, Dir: dir})
	if err := s.TryOnce(B); err == nil || !strings.Contains(err.Error(), "want 1024") {
		t.Fatalf("short grubenv: %v", err)
	}
	os.WriteFile(filepath.Join(dir, "autoboot.txt"), []byte("[all]\nboot_partition=2\n"), 0o644)
	s, _ = New(Config{Method: board.Tryboot, Dir: dir})
	if _, err := s.State(); err == nil || !strings.Contains(err.Error(), "tryboot_a_b") {
		t.Fatalf("autoboot.txt without tryboot_a_b: %v", err)
	}
	if _, err := New(Config{Method: "floppy", Dir: dir}); err == nil {
		t.Fatal("unknown method accepted")
	}
}

func TestAutoboot(t *testing.T) {
	ab, err := AutobootFor(B)
	must(t, err)
	want := "[all]\ntryboot_a_b=1\nboot_partition=3\n[tryboot]\nboot_partition=2\n"
	if string(ab.Marshal()) != want {
		t.Fatalf("%q", ab.Marshal())
	}
	got, err := ParseAutoboot("# comment\n[all]\ntryboot_a_b=1\nboot_partition=3\n[none]\nboot_partition=9\n[tryboot]\nboot_partition=2\n")
	if err != nil || got != ab {
		t.Fatalf("%+v %v", got, err)
	}
	for text, msg := range map[string]string{
		"[all]\nboot_partition=x\n":                 "not a number",
		"[pi4]\nboot_partition=2\n":                 "filter [pi4]",
		"[all]\ntryboot_a_b=1\n":                    "no boot_partition",
		"[all]\nboot_partition=2\nkernel=vmlinuz\n": "not part of the A/B scheme",
		"[all]\nboot_partition 2\n":                 "not NAME=VALUE",
		strings.Repeat("#", 600):                    "only 512",
	} {
		if _, err := ParseAutoboot(text); err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("%q: %v, want %q", text, err, msg)
		}
	}
	if _, _, err := (Autoboot{Partition: 4, Try: 2}).Slots(); err == nil {
		t.Error("partition 4 taken for a slot")
	}
}

func TestAutobootRewrittenInPlace(t *testing.T) {
	dir := t.TempDir()
	ab, _ := AutobootFor(A)
	p := filepath.Join(dir, "autoboot.txt")
	os.WriteFile(p, ab.Marshal(), 0o644)
	before, _ := os.Stat(p)
	s, _ := New(Config{Method: board.Tryboot, Dir: dir})
	must(t, s.Commit(B))
	after, _ := os.Stat(p)
	if !os.SameFile(before, after) {
		t.Error("autoboot.txt was replaced, not rewritten in place")
	}
	if b, _ := os.ReadFile(p); !strings.Contains(string(b), "[all]\ntryboot_a_b=1\nboot_partition=3\n") {
		t.Errorf("%q", b)
	}
}

func TestSelectBinary(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, BinaryName(A)), nil, 0o755)
	s, _ := New(Config{Method: Binary, Dir: dir})
	must(t, s.TryOnce(B)) // no binary B: not tried
	if p, slot, err := SelectBinary(dir); err != nil || slot != A || p != filepath.Join(dir, "shoestring.A") {
		t.Fatalf("%s %s %v", p, slot, err)
	}
	if exists(filepath.Join(dir, "try")) {
		t.Fatal("the one-shot flag survived its boot")
	}
	os.WriteFile(filepath.Join(dir, BinaryName(B)), nil, 0o755)
	must(t, s.Commit(B))
	if l, _ := os.Readlink(filepath.Join(dir, "committed")); l != "shoestring.B" {
		t.Fatalf("committed -> %q", l)
	}
}

func TestCmdlineSlot(t *testing.T) {
	if s, err := CmdlineSlot("console=ttyS0 panic=10 shoestring.slot=B shoestring.disk=2dee6dcd"); s != B || err != nil {
		t.Fatalf("%q %v", s, err)
	}
	if s, err := CmdlineSlot("console=ttyS0"); s != "" || err != nil {
		t.Fatalf("%q %v", s, err)
	}
	if _, err := CmdlineSlot("shoestring.slot=C"); err == nil {
		t.Fatal("slot C accepted")
	}
	t.Setenv(SlotEnv, "B")
	if Booted() != B {
		t.Fatal("SHOESTRING_SLOT not read")
	}
}

// TestKeepTrial: a planned reboot during a trial re-arms it, so the boot
// loader comes back to the trial slot (boots counted on), up to
// MaxTrialBoots; a slot marked bad is not re-armed, and the reboot goes
// back to the committed slot.
func TestKeepTrial(t *testing.T) {
	for _, m := range methods {
		t.Run(string(m), func(t *testing.T) {
			r := newRig(t, m)
			must(t, r.s.Install(B, "v2"))
			must(t, r.s.TryOnce(B))
			booted := r.boot(t, RestartArg(state(t, r.s)))
			if booted != B {
				t.Fatalf("armed trial booted %s", booted)
			}
			_, err := r.s.RecordBoot(B)
			must(t, err)
			for boots := 1; boots < MaxTrialBoots; boots++ {
				kept, err := KeepTrial(r.s, B)
				if err != nil || !kept {
					t.Fatalf("boot %d: KeepTrial %v %v", boots, kept, err)
				}
				if got := r.boot(t, RestartArg(state(t, r.s))); got != B {
					t.Fatalf("deliberate reboot %d of the trial booted %s", boots, got)
				}
				st, err := r.s.RecordBoot(B)
				must(t, err)
				if st.Boots != boots+1 || st.Trial != B || st.Slots[B].Status != Trying {
					t.Fatalf("after deliberate reboot %d: %+v", boots, st)
				}
			}
			if kept, err := KeepTrial(r.s, B); kept || err == nil {
				t.Errorf("trial re-armed past MaxTrialBoots: %v %v", kept, err)
			}
			must(t, r.s.MarkBad(B, "soak failed"))
			if kept, err := KeepTrial(r.s, B); kept || err != nil {
				t.Errorf("bad slot: KeepTrial %v %v", kept, err)
			}
			if got := r.boot(t, RestartArg(state(t, r.s))); got != A {
				t.Errorf("reboot after a failed soak booted %s", got)
			}
		})
	}
}
