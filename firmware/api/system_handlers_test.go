package api

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

type fakeBox struct {
	disk     []string
	stopping bool
	asked    []string
}

func (f *fakeBox) SystemInfo() SystemInfo { return SystemInfo{Board: "qemu-amd64", Slot: "B"} }
func (f *fakeBox) SystemLogs(n int, since uint64) SystemLogs {
	return SystemLogs{Lines: []SystemLogLine{{Seq: since + 1, Text: "hello"}}, Next: since + 2}
}
func (f *fakeBox) DiskLogs(n int) ([]string, error) {
	if f.disk == nil {
		return nil, ErrNoDiskLog
	}
	return f.disk, nil
}
func (f *fakeBox) Power(action, reason string) bool {
	f.asked = append(f.asked, action)
	return !f.stopping
}

// TestSystemRoutes: the system endpoints PID 1 adds, through the one
// registration and JSON path every endpoint takes.
func TestSystemRoutes(t *testing.T) {
	box := &fakeBox{}
	mux := http.NewServeMux()
	SystemRoutes(mux, box, slog.New(slog.DiscardHandler))
	call := func(method, path string) (int, string) {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
		return rec.Code, rec.Body.String()
	}
	if code, body := call("GET", "/api/v1/system"); code != 200 || !strings.Contains(body, `"slot": "B"`) {
		t.Errorf("system: %d %s", code, body)
	}
	if code, body := call("GET", "/api/v1/system/logs?since=41"); code != 200 || !strings.Contains(body, `"seq": 42`) {
		t.Errorf("logs: %d %s", code, body)
	}
	if code, body := call("GET", "/api/v1/system/logs?source=disk"); code != 404 || !strings.Contains(body, "RAM only") {
		t.Errorf("disk logs without a data partition: %d %s", code, body)
	}
	box.disk = []string{"old line"}
	if code, body := call("GET", "/api/v1/system/logs?source=disk"); code != 200 || !strings.Contains(body, "old line") {
		t.Errorf("disk logs: %d %s", code, body)
	}
	if code, _ := call("POST", "/api/v1/system/reboot?tryboot=1"); code != 202 {
		t.Errorf("tryboot: %d", code)
	}
	if code, _ := call("POST", "/api/v1/system/reboot"); code != 202 {
		t.Errorf("reboot: %d", code)
	}
	box.stopping = true
	if code, _ := call("POST", "/api/v1/system/poweroff"); code != 409 {
		t.Errorf("poweroff while stopping: %d", code)
	}
	if got := strings.Join(box.asked, ","); got != "tryboot,reboot,poweroff" {
		t.Errorf("actions asked: %s", got)
	}
}
