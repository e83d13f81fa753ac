package overlay

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/shoestring-dns/shoestring/firmware/api"
)

// Access control: every request to the management API is made by a
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
}

// Role returns the highest role the policy grants the caller.
func (p Policy) Role(c api.Caller) api.Role {
	switch {
	case matchAny(p.Admin, c):
		return api.RoleAdmin
	case matchAny(p.Read, c):
		return api.RoleRead
	}
	return api.RoleNone
}

func matchAny(list []string, c api.Caller) bool {
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
	WhoIs(ctx context.Context, remoteAddr string) (api.Caller, error)
}

// WhoIs asks the tailnet who is calling from remoteAddr.
func (t *Tailnet) WhoIs(ctx context.Context, remoteAddr string) (api.Caller, error) {
	w, err := t.lc.WhoIs(ctx, remoteAddr)
	if err != nil {
		return api.Caller{Addr: remoteAddr}, err
	}
	c := api.Caller{Addr: remoteAddr}
	if w.Node != nil {
		c.Node = strings.TrimSuffix(w.Node.Name, ".")
		if host, _, _ := strings.Cut(c.Node, "."); host != "" {
			c.Node = host
		}
		c.Tags = slices.Clone(w.Node.Tags)
	}
	if w.UserProfile != nil && len(c.Tags) == 0 {
		c.Login = w.UserProfile.LoginName
	}
	return c, nil
}

// Loopback treats every caller as on the box itself: the resolver of dev
// mode and of a node without a tailnet, whose management listens on
// loopback only. Anyone who can reach loopback is already root there.
type Loopback struct{}

// WhoIs returns a local admin for a loopback address.
func (Loopback) WhoIs(_ context.Context, remoteAddr string) (api.Caller, error) {
	c := api.Caller{Addr: remoteAddr, Local: true}
	if ap, err := netip.ParseAddrPort(remoteAddr); err == nil && ap.Addr().Unmap().IsLoopback() {
		c.Role = api.RoleAdmin
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
		}
		need := api.RoleRead
		if mutating(r.Method) {
			need = api.RoleAdmin
		}
		if !allowed(c.Role, need) {
			if need == api.RoleAdmin {
				log.Warn("management: change refused", "who", c.String(), "role", string(c.Role), "method", r.Method, "path", r.URL.Path)
			}
			deny(w, http.StatusForbidden, string(need)+" role needed; "+c.String()+" has "+roleName(c.Role))
			return
		}
		if need == api.RoleAdmin {
			// Logged before the handler runs, so a change that crashes
			// or hangs the node still says who asked for it.
			log.Info("management: change", "who", c.String(), "method", r.Method, "path", r.URL.Path)
		}
		next.ServeHTTP(w, r.WithContext(api.WithCaller(r.Context(), c)))
	})
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

func allowed(have, need api.Role) bool {
	switch need {
	case api.RoleRead:
		return have == api.RoleRead || have == api.RoleAdmin
	case api.RoleAdmin:
		return have == api.RoleAdmin
	}
	return false
}

func roleName(r api.Role) string {
	if r == api.RoleNone {
		return "no role"
	}
	return "role " + string(r)
}

func deny(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(api.Error{Error: msg})
}
