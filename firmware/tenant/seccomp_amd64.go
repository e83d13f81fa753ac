package tenant

import "golang.org/x/sys/unix"

const auditArch = 0xc000003e // AUDIT_ARCH_X86_64

// deniedCalls are bind and listen; socketcall is -1: none on this arch.
func deniedCalls() (calls []int, socketcall int) { return []int{unix.SYS_BIND, unix.SYS_LISTEN}, -1 }
