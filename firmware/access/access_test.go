package access

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestPolicyRoles(t *testing.T) {
	p := Policy{Admin: []string{"alice@example.net", "tag:ops", "carol"}, Read: []string{"tag:monitoring", "dave@example.net"}}
	for _, x := range []struct {
		c    Caller
		want Role
	}{
		{Caller{Login: "alice@example.net"}, RoleAdmin},
		{Caller{Login: "ALICE@example.net"}, RoleAdmin},
		{Caller{Login: "carol@example.net"}, RoleAdmin}, // bare user name
		{Caller{Login: "carol"}, RoleAdmin},
		{Caller{Login: "carolyn@example.net"}, RoleNone},
		{Caller{Node: "ops1", Tags: []string{"tag:ops"}}, RoleAdmin},
		{Caller{Node: "prom", Tags: []string{"tag:monitoring"}}, RoleRead},
		{Caller{Login: "dave@example.net"}, RoleRead},
		{Caller{Login: "eve@example.net"}, RoleNone},
		// A tagged machine is its tags, not the user who tagged it.
		{Caller{Login: "alice@example.net", Tags: []string{"tag:ci"}}, RoleNone},
	} {
		if got := p.Role(x.c); got != x.want {
			t.Errorf("%+v: %q, want %q", x.c, got, x.want)
		}
	}
	if (Policy{Read: []string{"*"}}).Role(Caller{Login: "anyone@x"}) != RoleRead {
		t.Error("* does not grant read")
	}
}

type fakeWho map[string]Caller

func (f fakeWho) WhoIs(_ context.Context, addr string) (Caller, error) {
	c, ok := f[addr]
	if !ok {
		return Caller{}, errors.New("no such peer")
	}
	c.Addr = addr
	return c, nil
}

// TestGuard: reads need read, anything else admin; unknown callers are
// refused; every change and every refused change is logged with who; the
// handler sees the caller.
func TestGuard(t *testing.T) {
	who := fakeWho{
		"100.64.0.1:1000": {Login: "alice@example.net", Node: "laptop"},
		"100.64.0.2:1000": {Login: "bob@example.net", Node: "desk"},
		"100.64.0.3:1000": {Login: "mallory@example.net", Node: "evil"},
	}
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	var seen Caller
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen, _ = CallerFrom(r.Context())
		w.WriteHeader(http.StatusOK)
	})
	h := Guard(next, who, Policy{Admin: []string{"alice@example.net"}, Read: []string{"bob@example.net"}}, log)
	for _, x := range []struct {
		from, method string
		code         int
	}{
		{"100.64.0.1:1000", "GET", 200},
		{"100.64.0.1:1000", "PUT", 200},
		{"100.64.0.1:1000", "DELETE", 200},
		{"100.64.0.2:1000", "GET", 200},
		{"100.64.0.2:1000", "HEAD", 200},
		{"100.64.0.2:1000", "PUT", 403},
		{"100.64.0.2:1000", "POST", 403},
		{"100.64.0.2:1000", "DELETE", 403},
		{"100.64.0.2:1000", "PATCH", 403},
		{"100.64.0.3:1000", "GET", 403},
		{"192.0.2.1:1000", "GET", 403},
	} {
		req := httptest.NewRequest(x.method, "/api/v1/zones/example.org", nil)
		req.RemoteAddr = x.from
		rec := httptest.NewRecorder()
		seen = Caller{}
		h.ServeHTTP(rec, req)
		if rec.Code != x.code {
			t.Errorf("%s %s: %d, want %d (%s)", x.from, x.method, rec.Code, x.code, rec.Body)
		}
		if x.code == 200 && seen.Addr != x.from {
			t.Errorf("%s %s: handler saw caller %+v", x.from, x.method, seen)
		}
	}
	out := logs.String()
	for _, want := range []string{
		`msg="management: change" who="alice@example.net (laptop)" method=PUT`,
		`msg="management: change" who="alice@example.net (laptop)" method=DELETE`,
		`msg="management: change refused" who="bob@example.net (desk)" role=read method=POST`,
		`msg="management: caller not identified; refused" from=192.0.2.1:1000`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %s\n%s", want, out)
		}
	}
	if strings.Contains(out, "method=GET") && strings.Contains(out, `msg="management: change" who="bob`) {
		t.Errorf("a read was logged as a change:\n%s", out)
	}
}

// TestLoopback: on a node without a tailnet, loopback callers are the box
// itself (admin) and nothing else is anyone.
func TestLoopback(t *testing.T) {
	h := Guard(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}), Loopback{}, Policy{}, slog.New(slog.DiscardHandler))
	for _, x := range []struct {
		from string
		code int
	}{{"127.0.0.1:5000", 200}, {"[::1]:5000", 200}, {"[::ffff:127.0.0.1]:5000", 200}, {"192.0.2.1:5000", 403}} {
		req := httptest.NewRequest("PUT", "/api/v1/zones/x", nil)
		req.RemoteAddr = x.from
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != x.code {
			t.Errorf("%s: %d, want %d", x.from, rec.Code, x.code)
		}
	}
}

// TestTenantRole: a tenant grant makes a scoped role that "*" does not
// widen; an identity named as admin or reader keeps that role.
func TestTenantRole(t *testing.T) {
	p := Policy{Admin: []string{"ops@example.net", "*"}, Read: []string{"*"}, Tenants: map[string][]string{"de": {"alice", "tag:de"}, "nic": {"alice", "ops@example.net"}}}
	for _, x := range []struct {
		c       Caller
		role    Role
		tenants []string
	}{
		{Caller{Login: "alice@example.net"}, RoleTenant, []string{"de", "nic"}},
		{Caller{Node: "ci", Tags: []string{"tag:de"}}, RoleTenant, []string{"de"}},
		{Caller{Login: "ops@example.net"}, RoleAdmin, []string{"nic"}},
		{Caller{Login: "bob@example.net"}, RoleAdmin, nil},
	} {
		if got := p.Role(x.c); got != x.role {
			t.Errorf("%+v: role %q, want %q", x.c, got, x.role)
		}
		if got := p.TenantsOf(x.c); strings.Join(got, ",") != strings.Join(x.tenants, ",") {
			t.Errorf("%+v: tenants %v, want %v", x.c, got, x.tenants)
		}
	}
}
