package api

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"

	"github.com/shoestring-dns/shoestring/firmware/tenant"
)

// The host's tenant endpoints (shoestring host):
//
//	GET    /api/v1/tenants         tenant.HostStatus: cgroups and every tenant
//	GET    /api/v1/tenants/{name}  tenant.Status
//	POST   /api/v1/tenants         tenant.AddRequest → tenant.Status; 201 when
//	                               added, 200 when it existed just so
//	DELETE /api/v1/tenants/{name}  ?keep_data=1 keeps its data directory
//	*      /api/v1/tenants/{name}/PATH  the tenant's own endpoint /PATH, on
//	                               its control socket: metrics,
//	                               api/v1/secondary[/zones/Z[/refresh]],
//	                               api/v1/zones, api/v1/overview,
//	                               api/v1/logs?n=N

// TenantBackend is what the tenant endpoints drive: *tenant.Supervisor.
type TenantBackend interface {
	Status() tenant.HostStatus
	Tenant(name string) (tenant.Status, error)
	Add(req tenant.AddRequest) (tenant.Status, bool, error)
	Remove(name string, keepData bool) error
	// Control passes a request on to the tenant's own endpoints (its
	// "rest" path value is the path there).
	Control(name string) (http.Handler, error)
}

// maxTenantBody bounds an add request (zones travel in it).
const maxTenantBody = 64 << 20

// TenantRoutes adds the tenant endpoints to mux.
func TenantRoutes(mux *http.ServeMux, b TenantBackend, log *slog.Logger) {
	mux.HandleFunc("GET /api/v1/tenants", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, b.Status())
	})
	mux.HandleFunc("GET /api/v1/tenants/{name}", func(w http.ResponseWriter, r *http.Request) {
		st, err := b.Tenant(r.PathValue("name"))
		if err != nil {
			writeJSON(w, tenantCode(err), Error{Error: err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, st)
	})
	mux.HandleFunc("POST /api/v1/tenants", func(w http.ResponseWriter, r *http.Request) {
		var req tenant.AddRequest
		body, err := io.ReadAll(io.LimitReader(r.Body, maxTenantBody))
		if err == nil {
			err = json.Unmarshal(body, &req)
		}
		if err != nil {
			writeJSON(w, http.StatusBadRequest, Error{Error: "tenant add: " + err.Error()})
			return
		}
		st, added, err := b.Add(req)
		if err != nil {
			log.Warn("tenant add refused", "tenant", req.Name, "err", err)
			writeJSON(w, tenantCode(err), Error{Error: err.Error()})
			return
		}
		code := http.StatusOK
		if added {
			log.Info("tenant added", "tenant", req.Name)
			code = http.StatusCreated
		}
		writeJSON(w, code, st)
	})
	mux.HandleFunc("DELETE /api/v1/tenants/{name}", func(w http.ResponseWriter, r *http.Request) {
		if err := b.Remove(r.PathValue("name"), r.URL.Query().Get("keep_data") == "1"); err != nil {
			writeJSON(w, tenantCode(err), Error{Error: err.Error()})
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("/api/v1/tenants/{name}/{rest...}", func(w http.ResponseWriter, r *http.Request) {
		h, err := b.Control(r.PathValue("name"))
		if err != nil {
			writeJSON(w, tenantCode(err), Error{Error: err.Error()})
			return
		}
		h.ServeHTTP(w, r)
	})
}

func tenantCode(err error) int {
	switch {
	case errors.Is(err, tenant.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, tenant.ErrConflict):
		return http.StatusConflict
	}
	return http.StatusBadRequest
}

// Tenants lists the host's tenants.
func (c *Client) Tenants() (tenant.HostStatus, error) {
	var h tenant.HostStatus
	err := c.do("GET", "/api/v1/tenants", nil, &h)
	return h, err
}

// Tenant is one tenant's status.
func (c *Client) Tenant(name string) (tenant.Status, error) {
	var st tenant.Status
	err := c.do("GET", "/api/v1/tenants/"+url.PathEscape(name), nil, &st)
	return st, err
}

// AddTenant adds a tenant (nothing changes if it exists just so).
func (c *Client) AddTenant(req tenant.AddRequest) (tenant.Status, error) {
	b, err := json.Marshal(req)
	if err != nil {
		return tenant.Status{}, err
	}
	var st tenant.Status
	err = c.do("POST", "/api/v1/tenants", b, &st)
	return st, err
}

// RemoveTenant removes a tenant, keeping its data with keepData.
func (c *Client) RemoveTenant(name string, keepData bool) error {
	q := ""
	if keepData {
		q = "?keep_data=1"
	}
	return c.do("DELETE", "/api/v1/tenants/"+url.PathEscape(name)+q, nil, nil)
}

// TenantGet reads one of a tenant's own endpoints (PATH after
// /api/v1/tenants/NAME/, e.g. "api/v1/secondary") into out.
func (c *Client) TenantGet(name, path string, out any) error {
	return c.do("GET", "/api/v1/tenants/"+url.PathEscape(name)+"/"+path, nil, out)
}
