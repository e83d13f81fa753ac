package api_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/shoestring-dns/shoestring/board"
	"github.com/shoestring-dns/shoestring/firmware/access"
	"github.com/shoestring-dns/shoestring/firmware/api"
	"github.com/shoestring-dns/shoestring/ota/agent/agenttest"
	"github.com/shoestring-dns/shoestring/ota/slot"
)

// who is a resolver that sees every caller as one tailnet login.
type who string

func (w who) WhoIs(_ context.Context, addr string) (access.Caller, error) {
	return access.Caller{Login: string(w), Node: "laptop", Addr: addr}, nil
}

// TestUpdateAPI drives the update endpoints with a real agent on a GRUB
// slot layout in temporary directories: a read-only caller may look but
// not update; an admin uploads a bad bundle (refused, slot untouched), a
// good one (installed, armed), and has the node download one by URL.
func TestUpdateAPI(t *testing.T) {
	r := agenttest.New(t, board.GRUBEnv)
	a := r.Agent(t, "v1.0.0")
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	mux := http.NewServeMux()
	api.UpdateRoutes(mux, a, "", log)
	policy := access.Policy{Admin: []string{"admin@example.com"}, Read: []string{"reader@example.com"}}
	admin := httptest.NewServer(access.Guard(mux, who("admin@example.com"), policy, log))
	defer admin.Close()
	reader := httptest.NewServer(access.Guard(mux, who("reader@example.com"), policy, log))
	defer reader.Close()

	p := agenttest.MakeParts(t, "v1.1.0")
	good := r.Bundle(t, agenttest.Board, "v1.1.0", p, nil)

	rc := api.NewClient(reader.URL)
	s, err := rc.Slots()
	if err != nil || s.Committed != slot.A || s.Booted != slot.A || len(s.Slots) != 2 || !s.Slots[0].Running || s.Slots[0].Status != "committed" || s.Last != nil {
		t.Fatalf("slots: %v %+v", err, s)
	}
	if u, err := rc.UpdateStatus(); err != nil || u.State != "idle" {
		t.Fatalf("update status: %v %+v", err, u)
	}
	var ae *api.APIError
	if _, err := rc.Update(bytes.NewReader(good), false); !errors.As(err, &ae) || ae.Code != http.StatusForbidden {
		t.Fatalf("update by a reader: want 403, got %v", err)
	}

	c := api.NewClient(admin.URL)
	before := r.Hashes(t, slot.B)
	bad := bytes.Clone(good)
	bad[len(bad)/2] ^= 1
	if _, err := c.Update(bytes.NewReader(bad), false); !errors.As(err, &ae) || ae.Code != http.StatusUnprocessableEntity || !strings.Contains(ae.Body.Error, "corrupt bundle") {
		t.Fatalf("bad bundle: want 422 corrupt, got %v", err)
	}
	if !reflect.DeepEqual(before, r.Hashes(t, slot.B)) {
		t.Fatal("a refused bundle changed slot B")
	}
	s, _ = c.Slots()
	if s.Last == nil || s.Last.Result != "refused" || !strings.Contains(s.Last.Reason, "corrupt bundle") {
		t.Fatalf("last outcome after a bad bundle: %+v", s.Last)
	}

	u, err := c.Update(bytes.NewReader(good), false)
	if err != nil {
		t.Fatal(err)
	}
	if u.State != "armed" || u.Slot != slot.B || u.Version != "v1.1.0" || u.Bytes != int64(len(good)) || u.Last == nil || u.Last.Result != "installed" {
		t.Fatalf("update: %+v", u)
	}
	s, _ = c.Slots()
	if s.Try != slot.B || s.Trial != slot.B || s.Slots[1].Version != "v1.1.0" || s.Slots[1].Status != "trying" {
		t.Fatalf("slots after update: %+v", s)
	}

	// By URL, a newer version (re-arming slot B).
	p2 := agenttest.MakeParts(t, "v1.2.0")
	b2 := r.Bundle(t, agenttest.Board, "v1.2.0", p2, nil)
	files := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		http.ServeContent(w, req, "b", agenttest.Epoch, bytes.NewReader(b2))
	}))
	defer files.Close()
	if u, err = c.UpdateURL(files.URL+"/b", false); err != nil || u.Version != "v1.2.0" || u.State != "armed" {
		t.Fatalf("update by URL: %v %+v", err, u)
	}
	if _, err := c.UpdateURL("file:///etc/passwd", false); !errors.As(err, &ae) || ae.Code != http.StatusBadRequest {
		t.Fatalf("file URL: want 400, got %v", err)
	}
}

func TestUpdateAPIWithoutSlots(t *testing.T) {
	mux := http.NewServeMux()
	api.UpdateRoutes(mux, nil, "", slog.New(slog.NewTextHandler(io.Discard, nil)))
	ts := httptest.NewServer(mux)
	defer ts.Close()
	var ae *api.APIError
	if _, err := api.NewClient(ts.URL).Slots(); !errors.As(err, &ae) || ae.Code != http.StatusNotFound {
		t.Fatalf("slots without slots: %v", err)
	}
	// PID 1 says why a box has no updates.
	mux = http.NewServeMux()
	api.UpdateRoutes(mux, nil, "no updates without the data partition", slog.New(slog.NewTextHandler(io.Discard, nil)))
	ts2 := httptest.NewServer(mux)
	defer ts2.Close()
	if _, err := api.NewClient(ts2.URL).UpdateStatus(); !errors.As(err, &ae) || ae.Code != http.StatusNotFound || !strings.Contains(err.Error(), "without the data partition") {
		t.Fatalf("update status without a data partition: %v", err)
	}
}

// TestUpdateAPIRefusesEarly: a bundle refused at its manifest (wrong
// board) is answered with 422 while the client is still sending the
// rest of a large upload, and the client sees that answer, not a broken
// pipe.
func TestUpdateAPIRefusesEarly(t *testing.T) {
	r := agenttest.New(t, board.GRUBEnv)
	mux := http.NewServeMux()
	api.UpdateRoutes(mux, r.Agent(t, "v1.0.0"), "", slog.New(slog.NewTextHandler(io.Discard, nil)))
	ts := httptest.NewServer(mux)
	defer ts.Close()
	p := agenttest.MakeParts(t, "v1.1.0")
	p.Kernel = append(p.Kernel, make([]byte, 8<<20)...)
	var ae *api.APIError
	_, err := api.NewClient(ts.URL).Update(bytes.NewReader(r.Bundle(t, "rpi", "v1.1.0", p, nil)), false)
	if !errors.As(err, &ae) || ae.Code != http.StatusUnprocessableEntity || !strings.Contains(ae.Body.Error, "wrong board") {
		t.Fatalf("want 422 wrong board, got %v", err)
	}
}
