package api

import (
	"errors"
	"io"
	"log/slog"
	"net/http"

	"github.com/shoestring-dns/shoestring/firmware/reconfig"
)

// The node's whole config, replaced while it runs (package reconfig):
//
//	GET /api/v1/config    ConfigStatus: the running document, its generation and hash, the last apply
//	PUT /api/v1/config    body: a config document (YAML). 202 with the Attempt when it validates
//	                      and is queued; 422 with the errors (each with its line) when it does not,
//	                      and nothing changes; 409 while another apply runs.
//
// The apply restarts the node runtime in-process, so the call returns
// before the new config runs: poll GET until last_attempt.state is
// applied or rolled_back (the new config did not come up healthy in time,
// and the old one runs again).

// MaxConfig bounds an uploaded config document (1 MiB).
const MaxConfig = 1 << 20

// ConfigStatus is GET /api/v1/config.
type ConfigStatus = reconfig.Running

// ConfigAttempt is an apply's outcome.
type ConfigAttempt = reconfig.Attempt

// ConfigBackend is *reconfig.Supervisor.
type ConfigBackend interface {
	Running() reconfig.Running
	Apply(doc []byte) (reconfig.Attempt, error)
}

// ConfigRoutes adds the config endpoints to mux.
func ConfigRoutes(mux *http.ServeMux, b ConfigBackend, log *slog.Logger) {
	mux.HandleFunc("GET /api/v1/config", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, b.Running())
	})
	mux.HandleFunc("PUT /api/v1/config", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxConfig))
		if err != nil {
			writeJSON(w, http.StatusRequestEntityTooLarge, Error{Error: err.Error()})
			return
		}
		a, err := b.Apply(body)
		switch {
		case errors.Is(err, reconfig.ErrBusy):
			writeJSON(w, http.StatusConflict, Error{Error: err.Error()})
			return
		case err != nil:
			log.Warn("config rejected", "from", r.RemoteAddr, "err", firstLine(err.Error()))
			writeJSON(w, http.StatusUnprocessableEntity, Error{Error: "config rejected; nothing was changed", Errors: []string{err.Error()}})
			return
		}
		log.Info("config apply queued", "generation", a.Generation, "hash", a.Hash[:12], "from", r.RemoteAddr)
		writeJSON(w, http.StatusAccepted, a)
	})
}

// Config returns the node's running config and the last apply.
func (c *Client) Config() (ConfigStatus, error) {
	var s ConfigStatus
	return s, c.do("GET", "/api/v1/config", nil, &s)
}

// PutConfig queues doc to replace the node's config (see ConfigRoutes).
func (c *Client) PutConfig(doc []byte) (ConfigAttempt, error) {
	var a ConfigAttempt
	return a, c.do("PUT", "/api/v1/config", doc, &a)
}
