package pid1

import (
	"encoding/json"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/shoestring-dns/shoestring/firmware/api"
)

// routes adds the system endpoints (firmware/api/system.go documents
// them) to the node's management API.
func (b *box) routes(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/v1/system", b.handleSystem)
	mux.HandleFunc("GET /api/v1/system/logs", b.handleLogs)
	mux.HandleFunc("POST /api/v1/system/reboot", func(w http.ResponseWriter, r *http.Request) {
		action := "reboot"
		if r.URL.Query().Get("tryboot") != "" {
			action = "tryboot"
		}
		b.handlePower(w, r, action)
	})
	mux.HandleFunc("POST /api/v1/system/poweroff", func(w http.ResponseWriter, r *http.Request) {
		b.handlePower(w, r, "poweroff")
	})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

func (b *box) handleSystem(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, b.info())
}

// info describes the box.
func (b *box) info() api.SystemInfo {
	host, _ := os.Hostname()
	s := api.SystemInfo{
		Board: b.board.Name, Version: b.version, Slot: b.args.Slot, Kernel: kernelRelease(), Hostname: host,
		Booted: bootTime(), Disk: b.disk, Config: b.cfgSource, Provisioned: b.provisioned,
		Restarts: b.services.counts(),
	}
	for k, v := range b.nodeSup.counts() {
		s.Restarts[k] = v
	}
	s.Uptime = time.Since(s.Booted).Round(time.Second).String()
	if d := b.bootToServe.Load(); d > 0 {
		s.BootToServe = time.Duration(d).Round(time.Millisecond).String()
	}
	s.Data.Device, s.Data.Problem = b.dataDev, b.dataProblem
	if b.dataDev != "" {
		s.Data.Size, s.Data.Free = statData()
	}
	if b.clock != nil {
		s.Clock = b.clock.status()
	}
	if b.wd != nil {
		s.Watchdog = b.wd.status()
	}
	s.MemTotal, s.MemFree = meminfo()
	return s
}

func (b *box) handleLogs(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	n, _ := strconv.Atoi(q.Get("n"))
	if q.Get("source") == "disk" {
		if b.logFile == nil {
			writeJSON(w, http.StatusNotFound, api.Error{Error: "no data partition: the log is in RAM only"})
			return
		}
		if n <= 0 {
			n = 1000
		}
		b.logFile.flush()
		lines, err := b.logFile.tail(n)
		if err != nil {
			writeJSON(w, http.StatusInternalServerError, api.Error{Error: err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, api.SystemLogs{Lines: []api.SystemLogLine{}, Disk: lines})
		return
	}
	since, _ := strconv.ParseUint(q.Get("since"), 10, 64)
	lines, next, lost := b.ring.since(since, n)
	out := api.SystemLogs{Lines: make([]api.SystemLogLine, 0, len(lines)), Next: next, Lost: lost}
	for _, l := range lines {
		out.Lines = append(out.Lines, api.SystemLogLine{Seq: l.Seq, Text: l.Text})
	}
	writeJSON(w, http.StatusOK, out)
}

func (b *box) handlePower(w http.ResponseWriter, r *http.Request, action string) {
	reason := "management API"
	if who := r.Header.Get("X-Forwarded-For"); who != "" {
		reason += " from " + who
	} else if r.RemoteAddr != "" {
		reason += " from " + r.RemoteAddr
	}
	if !b.requestPower(powerRequest{action: action, reason: reason}) {
		writeJSON(w, http.StatusConflict, api.Error{Error: "already stopping"})
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]string{"status": action + " requested: the node drains, then the box stops"})
}

// kernelRelease is uname -r.
func kernelRelease() string {
	b, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// meminfo returns MemTotal and MemAvailable in bytes.
func meminfo() (total, avail uint64) {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0, 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) < 2 {
			continue
		}
		v, _ := strconv.ParseUint(f[1], 10, 64)
		switch f[0] {
		case "MemTotal:":
			total = v << 10
		case "MemAvailable:":
			avail = v << 10
		}
	}
	return total, avail
}
