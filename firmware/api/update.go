package api

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/shoestring-dns/shoestring/ota/agent"
	"github.com/shoestring-dns/shoestring/ota/slot"
)

// The update endpoints (package ota/agent does the work):
//
//	POST /api/v1/update   body: the bundle (streamed; ?allow_downgrade=1,
//	                      ?no_reboot=1), or JSON UpdateRequest {"url": ...};
//	                      answers when the bundle is installed and armed
//	                      (UpdateStatus; unless no_reboot, the box then
//	                      drains and reboots into it once) or refused
//	                      (422), 409 while another update runs
//	GET  /api/v1/update   UpdateStatus: progress of the current or last update
//	GET  /api/v1/slots    SlotsStatus: both slots, the trial, the last outcome
//
// POST needs the admin role (access.Guard: every mutating method).

// UpdateBackend is what the update endpoints drive: *agent.Agent.
type UpdateBackend interface {
	Install(ctx context.Context, r io.Reader, req agent.Request) (agent.Outcome, error)
	Download(ctx context.Context, url string, req agent.Request) (agent.Outcome, error)
	Progress() agent.Progress
	Last() (agent.Outcome, bool)
	Slots() (st slot.State, booted string, err error)
	Bad() []agent.BadVersion
}

// UpdateRequest is the JSON body of POST /api/v1/update for a download.
type UpdateRequest struct {
	URL            string `json:"url"`
	AllowDowngrade bool   `json:"allow_downgrade,omitempty"`
	// NoReboot leaves the box armed: the trial starts at the next reboot.
	NoReboot bool `json:"no_reboot,omitempty"`
}

// UpdateOutcome is how the last update ended: installed (armed),
// refused (a bad bundle, or a version that failed its trial before; the
// inactive slot is as it was), failed, trying (booted on trial, soaking),
// committed, or rolled_back (the trial failed: the reason says how).
type UpdateOutcome struct {
	Result  string            `json:"result"`
	Version string            `json:"version,omitempty"`
	Slot    string            `json:"slot,omitempty"`
	Source  string            `json:"source,omitempty"`
	Reason  string            `json:"reason,omitempty"`
	Bytes   int64             `json:"bytes"`
	At      time.Time         `json:"at"`
	Started time.Time         `json:"started,omitzero"`
	Serials map[string]uint32 `json:"serials_before,omitempty"`
}

// BadVersion is a version that failed its trial: refused if offered
// again.
type BadVersion struct {
	Version string    `json:"version"`
	Reason  string    `json:"reason"`
	At      time.Time `json:"at"`
}

// UpdateStatus is the progress of the current or last update.
type UpdateStatus struct {
	// State: idle, receiving, armed (installed; the next reboot tries it
	// once), rebooting (draining, then the trial boot), soaking (this
	// boot is the trial), failed.
	State   string    `json:"state"`
	Source  string    `json:"source,omitempty"`
	Slot    string    `json:"slot,omitempty"`
	Version string    `json:"version,omitempty"`
	Part    string    `json:"part,omitempty"`
	Bytes   int64     `json:"bytes"`
	Total   int64     `json:"total,omitempty"`
	Resumes int       `json:"resumes,omitempty"`
	Started time.Time `json:"started,omitzero"`
	Error   string    `json:"error,omitempty"`
	// RestartArg is what the reboot into the armed slot needs (the Pi's
	// "0 tryboot").
	RestartArg string         `json:"restart_arg,omitempty"`
	Last       *UpdateOutcome `json:"last,omitempty"`
}

// SlotInfo is one slot.
type SlotInfo struct {
	Name    string    `json:"name"`
	Version string    `json:"version,omitempty"`
	Status  string    `json:"status"` // empty, installed, trying, committed, previous, bad
	Reason  string    `json:"reason,omitempty"`
	Changed time.Time `json:"changed,omitzero"`
	Running bool      `json:"running"`
}

// SlotsStatus is both slots and the boot loader's state.
type SlotsStatus struct {
	Method    string `json:"method"`
	Committed string `json:"committed"`
	Booted    string `json:"booted"`
	// Try is the slot the next boot, only, comes from; Trial the slot on
	// trial and Boots its boots so far.
	Try   string         `json:"try,omitempty"`
	Trial string         `json:"trial,omitempty"`
	Boots int            `json:"boots"`
	Slots []SlotInfo     `json:"slots"`
	Last  *UpdateOutcome `json:"last,omitempty"`
	// Bad are the versions refused because they failed their trial.
	Bad []BadVersion `json:"bad,omitempty"`
}

func updateOutcome(b UpdateBackend) *UpdateOutcome {
	o, ok := b.Last()
	if !ok {
		return nil
	}
	u := UpdateOutcome(o)
	return &u
}

// NewUpdateStatus reads an update's progress.
func NewUpdateStatus(b UpdateBackend) UpdateStatus {
	p := b.Progress()
	return UpdateStatus{State: p.State, Source: p.Source, Slot: p.Slot, Version: p.Version, Part: p.Part,
		Bytes: p.Bytes, Total: p.Total, Resumes: p.Resumes, Started: p.Started, Error: p.Error,
		RestartArg: p.RestartArg, Last: updateOutcome(b)}
}

// NewSlotsStatus reads the slots.
func NewSlotsStatus(b UpdateBackend) (SlotsStatus, error) {
	st, booted, err := b.Slots()
	if err != nil {
		return SlotsStatus{}, err
	}
	s := SlotsStatus{Method: string(st.Method), Committed: st.Committed, Booted: booted, Try: st.Try,
		Trial: st.Trial, Boots: st.Boots, Last: updateOutcome(b)}
	for _, v := range b.Bad() {
		s.Bad = append(s.Bad, BadVersion(v))
	}
	for _, n := range []string{slot.A, slot.B} {
		i := st.Slots[n]
		s.Slots = append(s.Slots, SlotInfo{Name: n, Version: i.Version, Status: string(i.Status), Reason: i.Reason, Changed: i.Changed, Running: n == booted})
	}
	return s, nil
}

// UpdateRoutes adds the update endpoints to mux; b nil (a node without
// A/B slots) answers them with 404 and why: off, or a generic reason.
func UpdateRoutes(mux *http.ServeMux, b UpdateBackend, off string, log *slog.Logger) {
	if off == "" {
		off = "this node has no A/B slots to update (a development run, or a host without binary slots)"
	}
	none := func(w http.ResponseWriter) bool {
		if b == nil {
			writeJSON(w, http.StatusNotFound, Error{Error: off})
			return true
		}
		return false
	}
	mux.HandleFunc("GET /api/v1/update", func(w http.ResponseWriter, r *http.Request) {
		if none(w) {
			return
		}
		writeJSON(w, http.StatusOK, NewUpdateStatus(b))
	})
	mux.HandleFunc("GET /api/v1/slots", func(w http.ResponseWriter, r *http.Request) {
		if none(w) {
			return
		}
		s, err := NewSlotsStatus(b)
		if err != nil {
			writeJSON(w, http.StatusInternalServerError, Error{Error: err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, s)
	})
	mux.HandleFunc("POST /api/v1/update", func(w http.ResponseWriter, r *http.Request) {
		if none(w) {
			return
		}
		var err error
		if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct == "application/json" {
			var req UpdateRequest
			if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10)).Decode(&req); err != nil {
				writeJSON(w, http.StatusBadRequest, Error{Error: "body: " + err.Error()})
				return
			}
			if u, e := url.Parse(req.URL); e != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				writeJSON(w, http.StatusBadRequest, Error{Error: "url: want an http or https URL, have " + strconv.Quote(req.URL)})
				return
			}
			log.Info("update: download requested", "url", req.URL, "from", r.RemoteAddr)
			_, err = b.Download(r.Context(), req.URL, agent.Request{AllowDowngrade: req.AllowDowngrade, NoReboot: req.NoReboot})
		} else {
			allow, _ := strconv.ParseBool(r.URL.Query().Get("allow_downgrade"))
			noReboot, _ := strconv.ParseBool(r.URL.Query().Get("no_reboot"))
			log.Info("update: upload", "from", r.RemoteAddr, "bytes", r.ContentLength)
			_, err = b.Install(r.Context(), r.Body, agent.Request{Source: "upload from " + r.RemoteAddr, AllowDowngrade: allow, NoReboot: noReboot})
		}
		var refused *agent.RefusedError
		switch {
		case err == nil:
			writeJSON(w, http.StatusOK, NewUpdateStatus(b))
		case errors.Is(err, agent.ErrBusy):
			writeJSON(w, http.StatusConflict, Error{Error: err.Error()})
		case errors.As(err, &refused):
			writeJSON(w, http.StatusUnprocessableEntity, Error{Error: err.Error() + "; the inactive slot is as it was"})
		default:
			writeJSON(w, http.StatusInternalServerError, Error{Error: err.Error()})
		}
	})
}
