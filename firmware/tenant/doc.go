// Package tenant runs a host's tenants (`shoestring host`): each tenant's
// name server is our own binary, started by the supervisor in its own
// chroot (a minimal root: the binary, the tenant's data, its /proc), under
// its own uid with no capabilities, in its own mount and PID namespaces
// and cgroup (CPU, memory, pids, cpuset; cgroup v2 or v1), serving only on
// sockets the host bound on the tenant's addresses and passed in. The
// host's routing announces each tenant's prefixes from that tenant's
// checks and withdraws them the moment its process dies.
//
// One concern per file: supervisor.go (the tenants' lifecycle),
// sandbox.go (the tenant process's root and privileges, from inside),
// seccomp*.go (no listening sockets of its own), landlock.go (nothing
// writable outside its data), cgroup*.go (limits), sockets.go (what the
// host binds), broker.go (what the host connects for a tenant in a
// network namespace of its own), serve.go (the tenant's server),
// control.go (its own endpoints, on a socket the host made),
// protections.go (what a tenant checks it runs under), state.go (what
// the host keeps across restarts), child.go (what passes between them),
// affinity.go (the host's cores and its tenants'), spawn.go (the one
// thread tenants are forked from), binary.go (the binary must be static).
package tenant
