package api

import (
	"fmt"
	"io"
	"net/http"
)

// Overview returns the node's state at a glance (what the status page
// shows).
func (c *Client) Overview() (Overview, error) {
	var o Overview
	return o, c.do("GET", "/api/v1/overview", nil, &o)
}

// WhoAmI returns the caller as the node identified it, with its role.
func (c *Client) WhoAmI() (Caller, error) {
	var w Caller
	return w, c.do("GET", "/api/v1/whoami", nil, &w)
}

// Tailnet returns the node's place on the tailnet and its peers.
func (c *Client) Tailnet() (Tailnet, error) {
	var t Tailnet
	return t, c.do("GET", "/api/v1/tailnet", nil, &t)
}

// Identity returns the node's identity document.
func (c *Client) Identity() (Identity, error) {
	var i Identity
	return i, c.do("GET", "/api/v1/identity", nil, &i)
}

// Metrics returns the node's metrics in Prometheus' text format.
func (c *Client) Metrics() ([]byte, error) {
	resp, err := c.HTTP.Get(c.Base + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("metrics: %s", resp.Status)
	}
	return b, nil
}
