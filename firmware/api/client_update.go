package api

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
)

// UpdateStatus returns the progress of the current or last update.
func (c *Client) UpdateStatus() (UpdateStatus, error) {
	var s UpdateStatus
	return s, c.do("GET", "/api/v1/update", nil, &s)
}

// Slots returns both slots.
func (c *Client) Slots() (SlotsStatus, error) {
	var s SlotsStatus
	return s, c.do("GET", "/api/v1/slots", nil, &s)
}

// Update uploads a bundle, streamed from r, and returns once it is
// installed and armed, or refused. It is not bounded by the client's
// timeout: a bundle may take minutes.
func (c *Client) Update(r io.Reader, allowDowngrade bool) (UpdateStatus, error) {
	return c.UpdateWith(r, UpdateRequest{AllowDowngrade: allowDowngrade})
}

// UpdateWith is Update with the request's options (its URL unused):
// allow_downgrade, no_reboot.
func (c *Client) UpdateWith(r io.Reader, o UpdateRequest) (UpdateStatus, error) {
	q := url.Values{}
	if o.AllowDowngrade {
		q.Set("allow_downgrade", "1")
	}
	if o.NoReboot {
		q.Set("no_reboot", "1")
	}
	path := "/api/v1/update"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	var s UpdateStatus
	return s, c.send("POST", path, "application/octet-stream", r, &s)
}

// UpdateURL has the node download a bundle from url and install it.
func (c *Client) UpdateURL(url string, allowDowngrade bool) (UpdateStatus, error) {
	return c.UpdateURLWith(UpdateRequest{URL: url, AllowDowngrade: allowDowngrade})
}

// UpdateURLWith has the node download and install the bundle at o.URL.
func (c *Client) UpdateURLWith(o UpdateRequest) (UpdateStatus, error) {
	b, err := json.Marshal(o)
	if err != nil {
		return UpdateStatus{}, err
	}
	var s UpdateStatus
	return s, c.send("POST", "/api/v1/update", "application/json", bytesReader(b), &s)
}

// send is do with a streamed body and no overall timeout.
func (c *Client) send(method, path, contentType string, body io.Reader, out any) error {
	req, err := http.NewRequest(method, c.Base+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", contentType)
	hc := *c.HTTP
	hc.Timeout = 0
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	return decodeResponse(resp, out)
}
