package tenant

import (
	"debug/elf"
	"fmt"
)

// checkStatic refuses a binary that needs a dynamic loader: a tenant's
// root holds the binary and nothing else, so no libc or ld.so is there to
// load it (build with CGO_ENABLED=0, as every box's firmware is).
func checkStatic(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("tenant binary %s: %w", path, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("tenant binary %s is dynamically linked; a tenant's root has no loader: build it with CGO_ENABLED=0", path)
		}
	}
	return nil
}
