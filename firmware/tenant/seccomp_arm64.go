package tenant

import "golang.org/x/sys/unix"

const auditArch = 0xc00000b7 // AUDIT_ARCH_AARCH64

// deniedCalls are bind and listen; socketcall is -1: none on this arch.
func deniedCalls() (calls []int, socketcall int) { return []int{unix.SYS_BIND, unix.SYS_LISTEN}, -1 }
