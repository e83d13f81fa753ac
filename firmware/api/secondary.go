package api

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/shoestring-dns/shoestring/firmware/secondary"
)

// The secondary service's endpoints (zones transferred from primaries,
// catalogs, outbound transfers):
//
//	GET    /api/v1/secondary                          everything below at once
//	GET    /api/v1/secondary/zones/{origin}           one zone's transfer state
//	PUT    /api/v1/secondary/zones/{origin}           add a secondary zone: {"primaries": ["ADDR[:PORT][@KEY]", ...]} (ADDR an IP address or a tailnet name)
//	DELETE /api/v1/secondary/zones/{origin}           remove one added through the API (and its data)
//	POST   /api/v1/secondary/zones/{origin}/refresh    check the primary now (IXFR if it is newer)
//	POST   /api/v1/secondary/zones/{origin}/retransfer full AXFR now, accepted whatever its serial

// SecondaryZone is one secondary zone's transfer state.
type SecondaryZone struct {
	Origin        string    `json:"origin"`
	Kind          string    `json:"kind"` // zone (config), api, catalog, member (of a catalog)
	Catalog       string    `json:"catalog,omitempty"`
	Primaries     []string  `json:"primaries"`
	HasData       bool      `json:"has_data"`
	Serial        uint32    `json:"serial"` // here
	Primary       string    `json:"primary,omitempty"`
	PrimarySerial *uint32   `json:"primary_serial,omitempty"` // at the primary, as last seen
	LastAttempt   time.Time `json:"last_attempt,omitzero"`
	LastSuccess   time.Time `json:"last_success,omitzero"`
	LastTransfer  time.Time `json:"last_transfer,omitzero"`
	LastResult    string    `json:"last_result,omitempty"`
	LastError     string    `json:"last_error,omitempty"`
	Failures      int       `json:"failures,omitempty"`
	NextRefresh   time.Time `json:"next_refresh,omitzero"`
	ExpiresAt     time.Time `json:"expires_at,omitzero"`
	Expired       bool      `json:"expired"`
	Refreshing    bool      `json:"refreshing,omitempty"`
	AXFRs         uint64    `json:"axfrs"`
	IXFRs         uint64    `json:"ixfrs"`
	Rejected      uint64    `json:"rejected"`
}

// CatalogStatus is a consumed catalog zone.
type CatalogStatus struct {
	Origin   string   `json:"origin"`
	Serial   uint32   `json:"serial"`
	Members  []string `json:"members"`
	Problems []string `json:"problems,omitempty"`
	Error    string   `json:"error,omitempty"`
}

// OutboundStatus is what the node serves to downstream secondaries.
type OutboundStatus struct {
	AXFRs    uint64   `json:"axfrs_served"`
	IXFRs    uint64   `json:"ixfrs_served"`
	Refused  uint64   `json:"refused"`
	Notify   []string `json:"notify,omitempty"`
	Catalog  string   `json:"catalog,omitempty"` // produced
	Notifies uint64   `json:"notifies_sent"`
}

// SecondaryStatus is the whole secondary service.
type SecondaryStatus struct {
	Zones    []SecondaryZone `json:"zones"`
	Catalogs []CatalogStatus `json:"catalogs"`
	Outbound OutboundStatus  `json:"outbound"`
}

// AddSecondaryRequest is the body of PUT /api/v1/secondary/zones/{origin}.
type AddSecondaryRequest struct {
	Primaries []string `json:"primaries"`
}

// Secondary is what the secondary endpoints need: package secondary's
// *Service. ZoneStatus, Refresh and RemoveZone return
// secondary.ErrNotSecondary for a zone that is not a secondary zone.
type Secondary interface {
	Status() secondary.ServiceStatus
	ZoneStatus(origin string) (secondary.Status, error)
	Refresh(origin string, full bool) error
	AddZone(origin string, primaries []string) (secondary.Status, error)
	RemoveZone(origin string) error
}

// SecondaryStatusOf is the whole secondary service as the API shows it
// (the overview and metrics read it too).
func SecondaryStatusOf(b Secondary) SecondaryStatus {
	st := b.Status()
	o := st.Outbound
	out := SecondaryStatus{Zones: []SecondaryZone{}, Catalogs: []CatalogStatus{},
		Outbound: OutboundStatus{AXFRs: o.AXFRs, IXFRs: o.IXFRs, Refused: o.Refused, Notify: o.Notify, Catalog: o.Catalog, Notifies: o.Notifies}}
	for _, z := range st.Zones {
		out.Zones = append(out.Zones, secondaryZone(z))
	}
	for _, c := range st.Catalogs {
		out.Catalogs = append(out.Catalogs, CatalogStatus(c))
	}
	return out
}

func secondaryZone(s secondary.Status) SecondaryZone {
	z := SecondaryZone{
		Origin: s.Origin, Kind: s.Kind, Catalog: s.Catalog, Primaries: s.Primaries, HasData: s.HasData, Serial: s.Serial,
		Primary: s.Primary, LastAttempt: s.LastAttempt, LastSuccess: s.LastSuccess, LastTransfer: s.LastTransfer,
		LastResult: s.LastResult, LastError: s.LastError, Failures: s.Failures, NextRefresh: s.NextRefresh,
		ExpiresAt: s.ExpiresAt, Expired: s.Expired, Refreshing: s.Refreshing, AXFRs: s.AXFRs, IXFRs: s.IXFRs, Rejected: s.Rejected,
	}
	if s.HavePrimarySerial {
		ps := s.PrimarySerial
		z.PrimarySerial = &ps
	}
	return z
}

// SecondaryRoutes adds the secondary endpoints to mux.
func SecondaryRoutes(mux *http.ServeMux, b Secondary, log *slog.Logger) {
	h := &handler{log: log}
	mux.HandleFunc("GET /api/v1/secondary", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, SecondaryStatusOf(b))
	})
	mux.HandleFunc("GET /api/v1/secondary/zones/{origin}", func(w http.ResponseWriter, r *http.Request) {
		z, err := b.ZoneStatus(r.PathValue("origin"))
		if err != nil {
			h.fail(w, err)
			return
		}
		writeJSON(w, http.StatusOK, secondaryZone(z))
	})
	mux.HandleFunc("PUT /api/v1/secondary/zones/{origin}", func(w http.ResponseWriter, r *http.Request) {
		var req AddSecondaryRequest
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
		if err == nil {
			err = json.Unmarshal(body, &req)
		}
		if err != nil {
			writeJSON(w, http.StatusBadRequest, Error{Error: "want {\"primaries\": [\"ADDR[:PORT][@KEY]\", ...]}: " + err.Error()})
			return
		}
		z, err := b.AddZone(r.PathValue("origin"), req.Primaries)
		if err != nil {
			writeJSON(w, http.StatusBadRequest, Error{Error: err.Error()})
			return
		}
		log.Info("secondary zone added", "zone", z.Origin, "primaries", req.Primaries, "from", r.RemoteAddr)
		writeJSON(w, http.StatusOK, secondaryZone(z))
	})
	mux.HandleFunc("DELETE /api/v1/secondary/zones/{origin}", func(w http.ResponseWriter, r *http.Request) {
		origin := r.PathValue("origin")
		if err := b.RemoveZone(origin); err != nil {
			if isNotFound(err) {
				h.fail(w, err)
				return
			}
			writeJSON(w, http.StatusBadRequest, Error{Error: err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"removed": origin})
	})
	for _, action := range []string{"refresh", "retransfer"} {
		full := action == "retransfer"
		mux.HandleFunc("POST /api/v1/secondary/zones/{origin}/"+action, func(w http.ResponseWriter, r *http.Request) {
			origin := r.PathValue("origin")
			if err := b.Refresh(origin, full); err != nil {
				h.fail(w, err)
				return
			}
			log.Info("secondary: "+action+" requested", "zone", origin, "from", r.RemoteAddr)
			writeJSON(w, http.StatusAccepted, map[string]string{action: origin})
		})
	}
}

// Secondary returns the secondary service's status.
func (c *Client) Secondary() (SecondaryStatus, error) {
	var s SecondaryStatus
	return s, c.do("GET", "/api/v1/secondary", nil, &s)
}

// SecondaryZone returns one secondary zone's transfer state.
func (c *Client) SecondaryZone(origin string) (SecondaryZone, error) {
	var z SecondaryZone
	return z, c.do("GET", "/api/v1/secondary/zones/"+url.PathEscape(origin), nil, &z)
}

// Refresh asks the node to check origin's primary now; full retransfers
// the whole zone whatever the serials say.
func (c *Client) Refresh(origin string, full bool) error {
	action := "refresh"
	if full {
		action = "retransfer"
	}
	return c.do("POST", "/api/v1/secondary/zones/"+url.PathEscape(origin)+"/"+action, nil, nil)
}

// AddSecondary adds a secondary zone fed from primaries ("ADDR[:PORT][@KEY]",
// ADDR an IP address or a tailnet name).
func (c *Client) AddSecondary(origin string, primaries []string) (SecondaryZone, error) {
	body, _ := json.Marshal(AddSecondaryRequest{Primaries: primaries})
	var z SecondaryZone
	return z, c.do("PUT", "/api/v1/secondary/zones/"+url.PathEscape(origin), body, &z)
}

// RemoveSecondary removes a secondary zone added through the API.
func (c *Client) RemoveSecondary(origin string) error {
	return c.do("DELETE", "/api/v1/secondary/zones/"+url.PathEscape(origin), nil, nil)
}
