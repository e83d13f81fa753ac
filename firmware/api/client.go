package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Client calls a node's management API (shoestring ctl uses it).
type Client struct {
	Base string // e.g. http://127.0.0.1:8053
	HTTP *http.Client
}

// NewClient returns a client for base ("host:port" or a URL).
func NewClient(base string) *Client {
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	return &Client{Base: strings.TrimRight(base, "/"), HTTP: &http.Client{Timeout: 60 * time.Second}}
}

// APIError is a failed call, with the node's explanation.
type APIError struct {
	Code int
	Body Error
}

func (e *APIError) Error() string {
	s := fmt.Sprintf("%d %s: %s", e.Code, http.StatusText(e.Code), e.Body.Error)
	for _, x := range e.Body.Errors {
		s += "\n  " + x
	}
	return s
}

func (c *Client) do(method, path string, body []byte, out any) error {
	req, err := http.NewRequest(method, c.Base+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return err
	}
	return decodeResponse(resp, out)
}

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }

// decodeResponse reads a response: out from a 2xx, an *APIError otherwise.
func decodeResponse(resp *http.Response, out any) error {
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		e := &APIError{Code: resp.StatusCode}
		if json.Unmarshal(b, &e.Body) != nil {
			e.Body.Error = strings.TrimSpace(string(b))
		}
		return e
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(b, out)
}

// Zones lists the node's zones.
func (c *Client) Zones() ([]ZoneInfo, error) {
	var zs []ZoneInfo
	return zs, c.do("GET", "/api/v1/zones", nil, &zs)
}

// Zone returns one zone with its records.
func (c *Client) Zone(origin string) (ZoneDetail, error) {
	var z ZoneDetail
	return z, c.do("GET", "/api/v1/zones/"+url.PathEscape(origin), nil, &z)
}

// PutZone uploads master file text for origin.
func (c *Client) PutZone(origin string, text []byte) (ZoneInfo, error) {
	var z ZoneInfo
	return z, c.do("PUT", "/api/v1/zones/"+url.PathEscape(origin), text, &z)
}

// DeleteZone removes a zone.
func (c *Client) DeleteZone(origin string) error {
	return c.do("DELETE", "/api/v1/zones/"+url.PathEscape(origin), nil, nil)
}

// Status returns the node's status.
func (c *Client) Status() (Status, error) {
	var s Status
	return s, c.do("GET", "/api/v1/status", nil, &s)
}

// Health returns nil when the node reports healthy.
func (c *Client) Health() error {
	return c.do("GET", "/healthz", nil, nil)
}
