package pid1

import (
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/shoestring-dns/shoestring/firmware/api"
)

// routes adds the system endpoints (firmware/api/system.go documents
// them) to the node's management API, with the box as their backend.
func (b *box) routes(mux *http.ServeMux) { api.SystemRoutes(mux, systemAPI{b}, b.log) }

// systemAPI is the box as the system endpoints see it.
type systemAPI struct{ b *box }

func (s systemAPI) SystemInfo() api.SystemInfo { return s.b.info() }

func (s systemAPI) SystemLogs(n int, since uint64) api.SystemLogs {
	lines, next, lost := s.b.ring.since(since, n)
	out := api.SystemLogs{Lines: make([]api.SystemLogLine, 0, len(lines)), Next: next, Lost: lost}
	for _, l := range lines {
		out.Lines = append(out.Lines, api.SystemLogLine{Seq: l.Seq, Text: l.Text})
	}
	return out
}

func (s systemAPI) DiskLogs(n int) ([]string, error) {
	if s.b.logFile == nil {
		return nil, api.ErrNoDiskLog
	}
	s.b.logFile.flush()
	return s.b.logFile.tail(n)
}

func (s systemAPI) Power(action, reason string) bool {
	return s.b.requestPower(powerRequest{action: action, reason: reason})
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
