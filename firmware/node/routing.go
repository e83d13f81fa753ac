package node

import (
	"context"
	"net/http"
)

// Routing (the routing issue): networking through netlink, the BGP
// speaker, health checks gating announcements, and drain. Stubs until then.

// startRouting configures the network and starts BGP and health checks.
func (n *Node) startRouting(ctx context.Context) error { return nil }

// routingRoutes adds the routing endpoints to the management API.
func (n *Node) routingRoutes(mux *http.ServeMux) {}

// drain runs before any planned stop, while DNS still answers.
func (n *Node) drain() {}
