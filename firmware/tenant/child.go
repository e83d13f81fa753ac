package tenant

import (
	"github.com/shoestring-dns/shoestring/firmware/config"

	"encoding/json"
	"fmt"
	"os"
)

// What the host hands a tenant process, and how. The process is our own
// binary started twice: `shoestring tenant-init` (as root, in fresh mount
// and PID namespaces) builds the tenant's root and drops everything, then
// executes `/shoestring tenant-serve` inside it, which serves on the
// passed sockets.

// EnvSpec names the environment variable that carries the childSpec.
const EnvSpec = "SHOESTRING_TENANT"

// Commands of the binary that the host runs; cmd/shoestring dispatches
// them to Init and Serve.
const (
	InitCommand  = "tenant-init"
	ServeCommand = "tenant-serve"
)

// Inherited descriptors: the report pipe (the tenant writes its
// protections to it), the start pipe (the host closes it once the process
// is in its cgroup), then the sockets, then the control socket and the
// dial broker (childSpec's fdControl, fdBroker).
const (
	fdReport  = 3
	fdStart   = 4
	fdSockets = 5
)

// Paths inside a tenant's root.
const (
	binaryInRoot = "/shoestring"
	dataInRoot   = "/data"
)

// childSpec is everything a tenant process is told.
type childSpec struct {
	Name    string       `json:"name"`
	UID     int          `json:"uid"`
	GID     int          `json:"gid"`
	Root    string       `json:"root"`   // host path of the (empty) root directory
	Data    string       `json:"data"`   // host path of the data directory
	Binary  string       `json:"binary"` // host path of our binary
	NSID    string       `json:"nsid"`
	Zones   []string     `json:"zones"` // origins; files are data/zones/ORIGIN.zone
	Sockets []socketKind `json:"sockets"`
	// DNS is the tenant's cookies, RRL and per-client limits.
	DNS *config.DNSAbuse `json:"dns,omitempty"`
	// Secondary is the tenant's secondary service (primaries, TSIG
	// keys, catalogs), nil for none.
	Secondary *config.Secondary `json:"secondary,omitempty"`
	// Dnstap is the tenant's own dnstap output, nil for none.
	Dnstap *config.Dnstap `json:"dnstap,omitempty"`
	// Control says that the descriptor after the sockets is the
	// tenant's control socket (control.go), listening already.
	Control bool `json:"control,omitempty"`
	// NetworkNamespace: it was started in a network namespace of its
	// own (config.Tenant.NetworkNamespace), which it checks.
	NetworkNamespace bool `json:"network_namespace,omitempty"`
	// CPUs are the cores it may use within its cpuset, when the host
	// keeps its own threads on tenants.host_cpuset (affinity.go).
	CPUs string `json:"cpus,omitempty"`
	// Broker says that the descriptor after the control socket is the
	// tenant's end of its dial broker (broker.go): it connects out
	// through the host. Given with NetworkNamespace (it has no network
	// of its own to connect with) and Control.
	Broker bool `json:"broker,omitempty"`
}

// fdControl is the control socket's descriptor, after the sockets.
func (s childSpec) fdControl() uintptr { return uintptr(fdSockets + len(s.Sockets)) }

// fdBroker is the dial broker's descriptor, after the control socket.
func (s childSpec) fdBroker() uintptr { return s.fdControl() + 1 }

func readSpec() (childSpec, error) {
	var s childSpec
	v := os.Getenv(EnvSpec)
	if v == "" {
		return s, fmt.Errorf("tenant: %s not set (this command is run by `shoestring host`)", EnvSpec)
	}
	if err := json.Unmarshal([]byte(v), &s); err != nil {
		return s, fmt.Errorf("tenant: %s: %w", EnvSpec, err)
	}
	return s, nil
}

// zoneFile is where a tenant's zone file is kept, relative to its data.
func zoneFile(origin string) string { return "zones/" + origin + "zone" }

// IsTenant reports whether this process is a tenant started by a host
// (process 1 of its PID namespace, but not the box's init).
func IsTenant() bool {
	return len(os.Args) > 1 && (os.Args[1] == InitCommand || os.Args[1] == ServeCommand) && os.Getenv(EnvSpec) != ""
}
