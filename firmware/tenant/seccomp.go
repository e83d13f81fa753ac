package tenant

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// A tenant serves on the sockets the host bound for it and may open no
// listening socket of its own: a seccomp filter, installed by the tenant
// on itself before it reads any of its data, makes bind and listen fail
// with EPERM. Connecting out (zone transfers, NOTIFY) still works: the
// kernel picks the local port without a bind call. A tenant in a network
// namespace of its own gets its connections from the host instead
// (broker.go): socketpair, sendmsg and recvmsg with SCM_RIGHTS, and what
// net.FileConn does with the socket received (fcntl, getsockopt,
// getsockname, getpeername) are not filtered, and the host binds a
// source address for it. The filter is a few classic BPF instructions,
// so no cgo and no library is needed.

// Values from linux/seccomp.h and linux/filter.h.
const (
	seccompSetModeFilter = 1
	seccompFlagTSync     = 1
	seccompRetAllow      = 0x7fff0000
	seccompRetErrno      = 0x00050000

	bpfLdWAbs = unix.BPF_LD | unix.BPF_W | unix.BPF_ABS
	bpfJeqK   = unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K
	bpfRetK   = unix.BPF_RET | unix.BPF_K

	offNr   = 0  // seccomp_data.nr
	offArch = 4  // seccomp_data.arch
	offArg0 = 16 // seccomp_data.args[0], low word (little-endian targets)
)

// denyListening builds the filter for this architecture (seccomp_*.go:
// auditArch, deniedCalls, socketcall).
func denyListening() []unix.SockFilter {
	deny := seccompRetErrno | uint32(unix.EPERM)
	var p []unix.SockFilter
	ins := func(code uint16, jt, jf uint8, k uint32) {
		p = append(p, unix.SockFilter{Code: code, Jt: jt, Jf: jf, K: k})
	}
	ins(bpfLdWAbs, 0, 0, offArch)
	ins(bpfJeqK, 1, 0, auditArch)
	ins(bpfRetK, 0, 0, seccompRetAllow) // another ABI: not ours to judge
	ins(bpfLdWAbs, 0, 0, offNr)
	calls, socketcall := deniedCalls()
	for _, nr := range calls {
		ins(bpfJeqK, 0, 1, uint32(nr))
		ins(bpfRetK, 0, 0, deny)
	}
	if socketcall >= 0 {
		// 386 multiplexes socket calls: socketcall(call, args).
		ins(bpfJeqK, 0, 5, uint32(socketcall))
		ins(bpfLdWAbs, 0, 0, offArg0)
		ins(bpfJeqK, 2, 0, 2) // SYS_BIND
		ins(bpfJeqK, 1, 0, 4) // SYS_LISTEN
		ins(bpfRetK, 0, 0, seccompRetAllow)
		ins(bpfRetK, 0, 0, deny)
	}
	ins(bpfRetK, 0, 0, seccompRetAllow)
	return p
}

// installSeccomp applies the filter to every thread of the process; it
// needs no_new_privs (set by Init before exec).
func installSeccomp() error {
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("no_new_privs: %w", err)
	}
	f := denyListening()
	prog := unix.SockFprog{Len: uint16(len(f)), Filter: &f[0]}
	if _, _, errno := unix.Syscall(unix.SYS_SECCOMP, seccompSetModeFilter, seccompFlagTSync, uintptr(unsafe.Pointer(&prog))); errno != 0 {
		return fmt.Errorf("seccomp: %w", errno)
	}
	return nil
}
