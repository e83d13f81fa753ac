package tenant

import "golang.org/x/sys/unix"

const auditArch = 0x40000003 // AUDIT_ARCH_I386

// deniedCalls are bind and listen as their own calls (Linux 4.3 and
// later), and socketcall, which Go's runtime uses for them on 386.
func deniedCalls() (calls []int, socketcall int) { return []int{361, 363}, unix.SYS_SOCKETCALL }
