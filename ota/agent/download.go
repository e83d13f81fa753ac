package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/shoestring-dns/shoestring/ota/bundle"
)

// netError is a transfer that broke (a reset, a connection closed before
// Content-Length): the download resumes. A body that ends cleanly short
// of the bundle is a truncated bundle, refused.
type netError struct{ err error }

// Error; no Unwrap: the bundle reader must not take a broken transfer's
// io.ErrUnexpectedEOF for a truncated bundle.
func (e *netError) Error() string { return "transfer interrupted: " + e.err.Error() }

// body wraps a response body, telling a broken transfer from its end.
type body struct{ r io.Reader }

func (b body) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return n, err
		}
		err = &netError{err}
	}
	return n, err
}

// download fetches url and installs it; when the transfer breaks it asks
// for the rest with a Range from the start of the chunk the target had
// not yet fully written (the manifest, verified once, is kept).
func (j *job) download(ctx context.Context, url string) error {
	a := j.a
	resp, err := j.get(ctx, url, 0)
	if err != nil {
		return err
	}
	cr := &counter{r: body{resp.Body}, j: j, ctx: ctx}
	rd, err := bundle.Open(cr, a.c.Keys, j.opts)
	if err != nil {
		resp.Body.Close()
		return err
	}
	if err := j.opened(rd.Manifest()); err != nil {
		resp.Body.Close()
		return err
	}
	err = rd.Install(j.t)
	resp.Body.Close()
	for resumes := 0; err != nil; {
		var ne *netError
		if !errors.As(err, &ne) || resumes >= a.c.Resumes {
			return err
		}
		resumes++
		part, done := j.t.resumePoint()
		off := j.m.ResumeOffset(part, done)
		a.log.Warn("ota: download interrupted; resuming", "url", url, "at", off, "of", j.m.Size(), "resume", resumes, "err", ne.err)
		a.update(func(p *Progress) { p.Resumes = resumes })
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Duration(resumes) * 200 * time.Millisecond):
		}
		resp, err = j.get(ctx, url, off)
		if err != nil {
			if errors.As(err, &ne) {
				continue
			}
			return err
		}
		rd, err = bundle.Resume(&counter{r: body{resp.Body}, j: j, ctx: ctx, base: off}, j.m, off)
		if err == nil {
			err = rd.Install(j.t)
		}
		resp.Body.Close()
	}
	return nil
}

// get requests url from byte off on.
func (j *job) get(ctx context.Context, url string, off int64) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	if off > 0 {
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-", off))
	}
	resp, err := j.a.c.HTTP.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, &netError{err}
	}
	want := http.StatusOK
	if off > 0 {
		want = http.StatusPartialContent
	}
	if resp.StatusCode != want {
		resp.Body.Close()
		if off > 0 && resp.StatusCode == http.StatusOK {
			return nil, fmt.Errorf("GET %s: the server ignores Range requests; cannot resume at byte %d", url, off)
		}
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	if off > 0 {
		// "bytes OFF-END/SIZE"
		cr := resp.Header.Get("Content-Range")
		start, _, _ := strings.Cut(strings.TrimPrefix(cr, "bytes "), "-")
		if n, err := strconv.ParseInt(start, 10, 64); err != nil || n != off {
			resp.Body.Close()
			return nil, fmt.Errorf("GET %s: asked for bytes from %d, the server sent %q", url, off, cr)
		}
	}
	return resp, nil
}
