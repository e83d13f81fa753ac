// Package access decides who may call the management API: a caller's
// identity (found by a Resolver — the tailnet's WhoIs, or Loopback in dev
// mode) is mapped to a role by a Policy, and Guard enforces it in front of
// every endpoint.
package access

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// Every request to the management API is made by a
// tailnet identity (the calling machine's user, or its tags), found with
// WhoIs from the connection's source address, which WireGuard has already
// authenticated. The policy maps identities to roles; reading needs the
// read role, anything that changes the node needs admin, and each change
// is logged with who made it.

// Policy lists identities per role: a login name ("alice@example.com",
// or a headscale user name), a tag ("tag:ops"), or "*" for everyone on the
// tailnet. A tagged machine is its tags: its user (the one who tagged it)
// does not count.
type Policy struct {
	Admin []string
	Read  []string
	// Tenants lists, by tenant name, who may manage that tenant of a
	// host and nothing else (RoleTenant): its status and its own
	// endpoints (/api/v1/tenants/NAME and below), reading and changing.
	// Named explicitly in Admin or Read, an identity has that role
	// instead; "*" there does not widen a tenant grant.
	Tenants map[string][]string
}

// Role returns the highest role the policy grants the caller.
func (p Policy) Role(c Caller) Role {
	switch {
	case matchNamed(p.Admin, c):
		return RoleAdmin
	case matchNamed(p.Read, c):
		return RoleRead
	case len(p.TenantsOf(c)) > 0:
		return RoleTenant
	case matchAny(p.Admin, c):
		return RoleAdmin
	case matchAny(p.Read, c):
		return RoleRead
	}
	return RoleNone
}

// TenantsOf lists the tenants the policy lets the caller manage.
func (p Policy) TenantsOf(c Caller) []string {
	var out []string
	for t, who := range p.Tenants {
		if matchNamed(who, c) {
			out = append(out, t)
		}
	}
	slices.Sort(out)
	return out
}

// matchNamed is matchAny without "*".
func matchNamed(list []string, c Caller) bool {
	return matchAny(slices.DeleteFunc(slices.Clone(list), func(s string) bool { return s == "*" }), c)
}

func matchAny(list []string, c Caller) bool {
	for _, who := range list {
		switch {
		case who == "*":
			return true
		case strings.HasPrefix(who, "tag:"):
			if slices.Contains(c.Tags, who) {
				return true
			}
		case len(c.Tags) == 0 && c.Login != "" && loginMatches(who, c.Login):
			return true
		}
	}
	return false
}

// loginMatches compares login names without case; a bare user name
// matches a login with a domain ("alice" matches "alice@example.com"), as
// headscale users are often written either way.
func loginMatches(want, login string) bool {
	if strings.EqualFold(want, login) {
		return true
	}
	if !strings.Contains(want, "@") {
		user, _, _ := strings.Cut(login, "@")
		return strings.EqualFold(want, user)
	}
	return false
}

// Resolver finds who is behind a connection's remote address.
type Resolver interface {
	WhoIs(ctx context.Context, remoteAddr string) (Caller, error)
}

// Loopback treats every caller as on the box itself: the resolver of dev
// mode and of a node without a tailnet, whose management listens on
// loopback only. Anyone who can reach loopback is already root there.
type Loopback struct{}

// WhoIs returns a local admin for a loopback address.
func (Loopback) WhoIs(_ context.Context, remoteAddr string) (Caller, error) {
	c := Caller{Addr: remoteAddr, Local: true}
	if ap, err := netip.ParseAddrPort(remoteAddr); err == nil && ap.Addr().Unmap().IsLoopback() {
		c.Role = RoleAdmin
	}
	return c, nil
}

// Guard wraps the management API with access control.
func Guard(next http.Handler, who Resolver, p Policy, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		c, err := who.WhoIs(ctx, r.RemoteAddr)
		cancel()
		if err != nil {
			log.Warn("management: caller not identified; refused", "from", r.RemoteAddr, "method", r.Method, "path", r.URL.Path, "err", err)
			deny(w, http.StatusForbidden, "caller not identified on the tailnet")
			return
		}
		if !c.Local {
			c.Role = p.Role(c)
			if c.Role == RoleTenant {
				c.Tenants = p.TenantsOf(c)
			}
		}
		if c.Role == RoleTenant {
			if t, ok := tenantPath(r.URL.Path); !ok || !slices.Contains(c.Tenants, t) || (r.Method == http.MethodDelete && r.URL.Path == "/api/v1/tenants/"+t) {
				log.Warn("management: outside the caller's tenants; refused", "who", c.String(), "tenants", strings.Join(c.Tenants, ","), "method", r.Method, "path", r.URL.Path)
				deny(w, http.StatusForbidden, c.String()+" may manage tenant "+strings.Join(c.Tenants, ", ")+" only (/api/v1/tenants/NAME and below; not its removal)")
				return
			}
			if mutating(r.Method) {
				log.Info("management: change", "who", c.String(), "method", r.Method, "path", r.URL.Path)
			}
			next.ServeHTTP(w, r.WithContext(WithCaller(r.Context(), c)))
			return
		}
		need := RoleRead
		if mutating(r.Method) {
			need = RoleAdmin
		}
		if !allowed(c.Role, need) {
			if need == RoleAdmin {
				log.Warn("management: change refused", "who", c.String(), "role", string(c.Role), "method", r.Method, "path", r.URL.Path)
			}
			deny(w, http.StatusForbidden, string(need)+" role needed; "+c.String()+" has "+roleName(c.Role))
			return
		}
		if need == RoleAdmin {
			// Logged before the handler runs, so a change that crashes
			// or hangs the node still says who asked for it.
			log.Info("management: change", "who", c.String(), "method", r.Method, "path", r.URL.Path)
		}
		next.ServeHTTP(w, r.WithContext(WithCaller(r.Context(), c)))
	})
}

// tenantPath returns the tenant a path of a host's API is about:
// /api/v1/tenants/NAME or below.
func tenantPath(p string) (string, bool) {
	rest, ok := strings.CutPrefix(p, "/api/v1/tenants/")
	if !ok {
		return "", false
	}
	name, _, _ := strings.Cut(rest, "/")
	return name, name != "" && !strings.Contains(name, "..")
}

// mutating reports whether a request method changes the node: anything but
// reading.
func mutating(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return false
	}
	return true
}

func allowed(have, need Role) bool {
	switch need {
	case RoleRead:
		return have == RoleRead || have == RoleAdmin
	case RoleAdmin:
		return have == RoleAdmin
	}
	return false
}

func roleName(r Role) string {
	if r == RoleNone {
		return "no role"
	}
	return "role " + string(r)
}

func deny(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(struct {
		Error string `json:"error"`
	}{msg}) // the shape of api.Error
}

// Role is what a caller may do: read, or also change things.
type Role string

// Roles.
const (
	RoleNone  Role = ""
	RoleRead  Role = "read"
	RoleAdmin Role = "admin"
	// RoleTenant may read and change its tenants' endpoints on a host,
	// and nothing else (Policy.Tenants).
	RoleTenant Role = "tenant"
)

// Caller is who made a request, as the access control found them.
type Caller struct {
	// Login is the tailnet user's login name; empty for tagged nodes.
	Login string `json:"login,omitempty"`
	// Node is the calling machine's tailnet name.
	Node string   `json:"node,omitempty"`
	Tags []string `json:"tags,omitempty"`
	Addr string   `json:"addr"`
	Role Role     `json:"role"`
	// Tenants are the tenants a RoleTenant caller may manage.
	Tenants []string `json:"tenants,omitempty"`
	// Local is set for callers on the box itself (loopback, dev mode).
	Local bool `json:"local,omitempty"`
}

// String names the caller for logs.
func (c Caller) String() string {
	switch {
	case c.Local:
		return "local:" + c.Addr
	case c.Login != "":
		return c.Login + " (" + c.Node + ")"
	case len(c.Tags) > 0:
		return c.Node + " " + c.Tags[0]
	}
	return c.Addr
}

type callerKey struct{}

// WithCaller returns ctx carrying the caller.
func WithCaller(ctx context.Context, c Caller) context.Context {
	return context.WithValue(ctx, callerKey{}, c)
}

// CallerFrom returns the caller a request was made by, if known.
func CallerFrom(ctx context.Context) (Caller, bool) {
	c, ok := ctx.Value(callerKey{}).(Caller)
	return c, ok
}
