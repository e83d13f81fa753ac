package node

import (
	"context"
	"net"
	"net/http"
)

// The management overlay (the overlay issue): the tailnet, access control,
// metrics, dnstap. Until then management listens where the config says.

// startOverlay joins the tailnet and starts the observability outputs.
func (n *Node) startOverlay(ctx context.Context) error { return nil }

// overlayRoutes adds metrics and overlay endpoints to the management API.
func (n *Node) overlayRoutes(mux *http.ServeMux) {}

// managementListeners returns where the management API listens.
func (n *Node) managementListeners(ctx context.Context) ([]net.Listener, error) {
	ln, err := net.Listen("tcp", string(n.cfg.Management.Listen))
	if err != nil {
		return nil, err
	}
	return []net.Listener{ln}, nil
}
