package api

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"

	"github.com/shoestring-dns/shoestring/firmware/catchment"
)

// The catchment endpoints (package catchment; the fleet controller
// drives them, the admin role is needed for every POST):
//
//	GET  /api/v1/catchment             []catchment.Status without replies
//	POST /api/v1/catchment             catchment.Request → Status: listen for its replies
//	GET  /api/v1/catchment/{id}        Status with the replies this node received
//	POST /api/v1/catchment/{id}/send   send this node's probes (from the anycast address)
//	POST /api/v1/catchment/{id}/stop   stop sending and recording

// CatchmentBackend is what the catchment endpoints drive:
// *catchment.Prober.
type CatchmentBackend interface {
	Register(catchment.Request) (catchment.Status, error)
	Send(id string) (catchment.Status, error)
	Stop(id string) (catchment.Status, error)
	Get(id string) (catchment.Status, error)
	List() []catchment.Status
}

// CatchmentRoutes adds the catchment endpoints to mux.
func CatchmentRoutes(mux *http.ServeMux, b CatchmentBackend, log *slog.Logger) {
	fail := func(w http.ResponseWriter, err error) {
		code := http.StatusInternalServerError
		switch {
		case errors.Is(err, catchment.ErrNotFound):
			code = http.StatusNotFound
		case errors.Is(err, catchment.ErrInvalid):
			code = http.StatusUnprocessableEntity
		case errors.Is(err, catchment.ErrBusy):
			code = http.StatusTooManyRequests
		}
		writeJSON(w, code, Error{Error: err.Error()})
	}
	mux.HandleFunc("GET /api/v1/catchment", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, b.List())
	})
	mux.HandleFunc("POST /api/v1/catchment", func(w http.ResponseWriter, r *http.Request) {
		var req catchment.Request
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 32<<20))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			writeJSON(w, http.StatusBadRequest, Error{Error: "body: " + err.Error()})
			return
		}
		st, err := b.Register(req)
		if err != nil {
			fail(w, err)
			return
		}
		log.Info("catchment measurement registered", "id", st.ID, "targets", st.Targets, "from", r.RemoteAddr)
		writeJSON(w, http.StatusOK, st)
	})
	mux.HandleFunc("GET /api/v1/catchment/{id}", func(w http.ResponseWriter, r *http.Request) {
		st, err := b.Get(r.PathValue("id"))
		if err != nil {
			fail(w, err)
			return
		}
		writeJSON(w, http.StatusOK, st)
	})
	for action, f := range map[string]func(string) (catchment.Status, error){"send": b.Send, "stop": b.Stop} {
		mux.HandleFunc("POST /api/v1/catchment/{id}/"+action, func(w http.ResponseWriter, r *http.Request) {
			st, err := f(r.PathValue("id"))
			if err != nil {
				fail(w, err)
				return
			}
			if action == "stop" { // the replies are for GET; stop says how it ended
				st.Replies = nil
			}
			writeJSON(w, http.StatusOK, st)
		})
	}
}
