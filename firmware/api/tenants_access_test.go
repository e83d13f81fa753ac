package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/shoestring-dns/shoestring/firmware/access"
	"github.com/shoestring-dns/shoestring/firmware/tenant"
)

// fakeTenants is a host with tenants de and nic whose own endpoints
// echo what reached them.
type fakeTenants struct{ removed []string }

func (f *fakeTenants) Status() tenant.HostStatus {
	return tenant.HostStatus{Tenants: []tenant.Status{{Name: "de"}, {Name: "nic"}}}
}
func (f *fakeTenants) Tenant(name string) (tenant.Status, error) {
	if name != "de" && name != "nic" {
		return tenant.Status{}, tenant.ErrNotFound
	}
	return tenant.Status{Name: name}, nil
}
func (f *fakeTenants) Add(req tenant.AddRequest) (tenant.Status, bool, error) {
	return tenant.Status{Name: req.Name}, true, nil
}
func (f *fakeTenants) Remove(name string, _ bool) error {
	f.removed = append(f.removed, name)
	return nil
}
func (f *fakeTenants) Control(name string) (http.Handler, error) {
	if name != "de" && name != "nic" {
		return nil, tenant.ErrNotFound
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s %s /%s", name, r.Method, r.PathValue("rest"))
	}), nil
}

type whoIs map[string]access.Caller

func (m whoIs) WhoIs(_ context.Context, addr string) (access.Caller, error) {
	c, ok := m[addr]
	if !ok {
		return access.Caller{}, errors.New("not on the tailnet")
	}
	c.Addr = addr
	return c, nil
}

// TestTenantGrant: on a host's API behind the real access guard, an
// identity granted tenant de (overlay.access.tenants) may read and change
// de's endpoints and nothing else: not nic's, not the tenant list, not
// adding or removing tenants, not the host's routing or metrics — even
// with read: ["*"]. An admin still may do everything.
func TestTenantGrant(t *testing.T) {
	mux := http.NewServeMux()
	log := slog.New(slog.DiscardHandler)
	tb := &fakeTenants{}
	TenantRoutes(mux, tb, log)
	RoutingRoutes(mux, &fakeRouting{}, log)
	mux.Handle("GET /metrics", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("host metrics")) }))
	who := whoIs{
		"100.64.0.1:1": {Login: "alice@example.net", Node: "alice-laptop"},
		"100.64.0.2:1": {Node: "de-ci", Tags: []string{"tag:de-ops"}},
		"100.64.0.3:1": {Login: "ops@example.net", Node: "ops"},
		"100.64.0.4:1": {Login: "bob@example.net", Node: "bob"},
	}
	policy := access.Policy{Admin: []string{"ops@example.net"}, Read: []string{"*"}, Tenants: map[string][]string{"de": {"alice@example.net", "tag:de-ops"}}}
	h := access.Guard(mux, who, policy, log)
	for _, c := range []struct {
		from, method, path string
		code               int
		body               string
	}{
		// de's grantees: de's endpoints, reading and changing.
		{"100.64.0.1:1", "GET", "/api/v1/tenants/de", 200, `"name": "de"`},
		{"100.64.0.1:1", "GET", "/api/v1/tenants/de/api/v1/secondary", 200, "de GET /api/v1/secondary"},
		{"100.64.0.1:1", "POST", "/api/v1/tenants/de/api/v1/secondary/zones/de./refresh", 200, "de POST /api/v1/secondary/zones/de./refresh"},
		{"100.64.0.1:1", "GET", "/api/v1/tenants/de/metrics", 200, "de GET /metrics"},
		{"100.64.0.2:1", "GET", "/api/v1/tenants/de/api/v1/logs", 200, "de GET /api/v1/logs"},
		// ... and nothing else.
		{"100.64.0.1:1", "GET", "/api/v1/tenants/nic", 403, "may manage tenant de only"},
		{"100.64.0.1:1", "GET", "/api/v1/tenants/nic/api/v1/secondary", 403, ""},
		{"100.64.0.1:1", "POST", "/api/v1/tenants/nic/api/v1/secondary/zones/nic./refresh", 403, ""},
		{"100.64.0.2:1", "GET", "/api/v1/tenants/nic/metrics", 403, ""},
		{"100.64.0.1:1", "GET", "/api/v1/tenants", 403, ""},
		{"100.64.0.1:1", "POST", "/api/v1/tenants", 403, ""},
		{"100.64.0.1:1", "DELETE", "/api/v1/tenants/de", 403, "not its removal"},
		{"100.64.0.1:1", "DELETE", "/api/v1/tenants/nic", 403, ""},
		{"100.64.0.1:1", "POST", "/api/v1/routing/drain", 403, ""},
		{"100.64.0.1:1", "GET", "/api/v1/routing", 403, ""},
		{"100.64.0.1:1", "GET", "/metrics", 403, ""},
		// Everyone else as before: read for all ("*"), admin for ops.
		{"100.64.0.4:1", "GET", "/api/v1/tenants/nic", 200, `"name": "nic"`},
		{"100.64.0.4:1", "POST", "/api/v1/tenants/de/api/v1/secondary/zones/de./refresh", 403, "admin role needed"},
		{"100.64.0.3:1", "DELETE", "/api/v1/tenants/nic", 204, ""},
		{"100.64.0.3:1", "POST", "/api/v1/routing/drain", 200, ""},
	} {
		req := httptest.NewRequest(c.method, c.path, strings.NewReader("{}"))
		req.RemoteAddr = c.from
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != c.code || !strings.Contains(rec.Body.String(), c.body) {
			t.Errorf("%s %s %s: %d %q, want %d with %q", who[c.from].String(), c.method, c.path, rec.Code, rec.Body.String(), c.code, c.body)
		}
	}
	if len(tb.removed) != 1 || tb.removed[0] != "nic" {
		t.Errorf("removed: %v", tb.removed)
	}
}
