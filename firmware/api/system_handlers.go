package api

import (
	"errors"
	"log/slog"
	"net/http"
	"strconv"
)

// ErrNoDiskLog is returned by a SystemBackend asked for the persisted log
// on a box without a data partition.
var ErrNoDiskLog = errors.New("no data partition: the log is in RAM only")

// SystemBackend is the box as the system endpoints see it (firmware/pid1
// implements it; the endpoints exist only where shoestring is PID 1).
type SystemBackend interface {
	SystemInfo() SystemInfo
	// SystemLogs returns up to n lines after since from the RAM ring.
	SystemLogs(n int, since uint64) SystemLogs
	// DiskLogs returns the last n persisted lines (ErrNoDiskLog without
	// a data partition).
	DiskLogs(n int) ([]string, error)
	// Power asks for "reboot", "tryboot" or "poweroff" and reports
	// false when the box is already stopping.
	Power(action, reason string) bool
}

// SystemRoutes adds the system endpoints (system.go lists them).
func SystemRoutes(mux *http.ServeMux, b SystemBackend, log *slog.Logger) {
	mux.HandleFunc("GET /api/v1/system", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, b.SystemInfo())
	})
	mux.HandleFunc("GET /api/v1/system/logs", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		n, _ := strconv.Atoi(q.Get("n"))
		if q.Get("source") == "disk" {
			if n <= 0 {
				n = 1000
			}
			lines, err := b.DiskLogs(n)
			switch {
			case errors.Is(err, ErrNoDiskLog):
				writeJSON(w, http.StatusNotFound, Error{Error: err.Error()})
			case err != nil:
				writeJSON(w, http.StatusInternalServerError, Error{Error: err.Error()})
			default:
				writeJSON(w, http.StatusOK, SystemLogs{Lines: []SystemLogLine{}, Disk: lines})
			}
			return
		}
		since, _ := strconv.ParseUint(q.Get("since"), 10, 64)
		writeJSON(w, http.StatusOK, b.SystemLogs(n, since))
	})
	power := func(action string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			action := action
			if action == "reboot" && r.URL.Query().Get("tryboot") != "" {
				action = "tryboot"
			}
			reason := "management API"
			if who := r.Header.Get("X-Forwarded-For"); who != "" {
				reason += " from " + who
			} else if r.RemoteAddr != "" {
				reason += " from " + r.RemoteAddr
			}
			if !b.Power(action, reason) {
				writeJSON(w, http.StatusConflict, Error{Error: "already stopping"})
				return
			}
			log.Info("system: "+action+" requested", "by", reason)
			writeJSON(w, http.StatusAccepted, map[string]string{"status": action + " requested: the node drains, then the box stops"})
		}
	}
	mux.HandleFunc("POST /api/v1/system/reboot", power("reboot"))
	mux.HandleFunc("POST /api/v1/system/poweroff", power("poweroff"))
}
