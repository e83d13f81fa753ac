package api

import (
	"net/url"
	"strconv"
	"time"
)

// The system endpoints exist on a box, where shoestring is PID 1 (they
// are added by firmware/pid1): what the box is, its logs, and power.
//
//	GET  /api/v1/system                      SystemInfo
//	GET  /api/v1/system/logs?n=N&since=SEQ   Logs from the RAM ring
//	GET  /api/v1/system/logs?source=disk&n=N Logs persisted on the data partition (previous boots too)
//	POST /api/v1/system/reboot[?tryboot=1]   202; the node drains, then the box reboots
//	POST /api/v1/system/poweroff             202; the node drains, then the box powers off

// SystemInfo describes the box.
type SystemInfo struct {
	Board    string    `json:"board"`
	Version  string    `json:"version"`
	Slot     string    `json:"slot"`
	Kernel   string    `json:"kernel"`
	Hostname string    `json:"hostname"`
	Booted   time.Time `json:"booted"`
	Uptime   string    `json:"uptime"`
	// BootToServe is how long after the kernel started the node first
	// answered DNS.
	BootToServe string `json:"boot_to_serve,omitempty"`
	Disk        string `json:"disk,omitempty"`
	Data        struct {
		Device string `json:"device,omitempty"`
		Size   uint64 `json:"size"`
		Free   uint64 `json:"free"`
		// Problem says why the data partition is not in use (the node
		// then keeps its data in RAM).
		Problem string `json:"problem,omitempty"`
	} `json:"data"`
	Config      string         `json:"config"` // where the running config came from
	Provisioned []string       `json:"provisioned,omitempty"`
	Clock       ClockInfo      `json:"clock"`
	Watchdog    WatchdogInfo   `json:"watchdog"`
	Restarts    map[string]int `json:"restarts,omitempty"`
	MemTotal    uint64         `json:"mem_total"`
	MemFree     uint64         `json:"mem_available"`
}

// ClockInfo is the state of the box's clock.
type ClockInfo struct {
	Synced     bool      `json:"synced"`
	Server     string    `json:"server,omitempty"`
	LastSync   time.Time `json:"last_sync,omitempty"`
	LastOffset string    `json:"last_offset,omitempty"`
	LastError  string    `json:"last_error,omitempty"`
}

// WatchdogInfo is the state of the hardware watchdog.
type WatchdogInfo struct {
	Device  string    `json:"device,omitempty"`
	Timeout string    `json:"timeout,omitempty"`
	Armed   bool      `json:"armed"`
	LastFed time.Time `json:"last_fed,omitempty"`
	// Starved says why it is not being fed (the box resets soon).
	Starved string `json:"starved,omitempty"`
}

// SystemLogLine is one line of the box log, numbered from boot.
type SystemLogLine struct {
	Seq  uint64 `json:"seq"`
	Text string `json:"text"`
}

// SystemLogs is a page of the box log. Next is the Seq to ask for to continue;
// Lost counts lines that left the ring before they were asked for.
type SystemLogs struct {
	Lines []SystemLogLine `json:"lines"`
	Next  uint64          `json:"next"`
	Lost  uint64          `json:"lost,omitempty"`
	// Disk holds persisted lines (source=disk) instead.
	Disk []string `json:"disk,omitempty"`
}

// System returns the box's description.
func (c *Client) System() (SystemInfo, error) {
	var s SystemInfo
	return s, c.do("GET", "/api/v1/system", nil, &s)
}

// SystemLogs returns up to n lines of the box log from seq on (n = 0: all the ring has);
// disk asks for the persisted log instead.
func (c *Client) SystemLogs(n int, since uint64, disk bool) (SystemLogs, error) {
	q := url.Values{}
	if n > 0 {
		q.Set("n", strconv.Itoa(n))
	}
	if since > 0 {
		q.Set("since", strconv.FormatUint(since, 10))
	}
	if disk {
		q.Set("source", "disk")
	}
	var l SystemLogs
	return l, c.do("GET", "/api/v1/system/logs?"+q.Encode(), nil, &l)
}

// Reboot asks the box to drain and reboot; tryboot boots the other slot
// once (an update's trial).
func (c *Client) Reboot(tryboot bool) error {
	p := "/api/v1/system/reboot"
	if tryboot {
		p += "?tryboot=1"
	}
	return c.do("POST", p, nil, nil)
}

// Poweroff asks the box to drain and power off.
func (c *Client) Poweroff() error {
	return c.do("POST", "/api/v1/system/poweroff", nil, nil)
}
