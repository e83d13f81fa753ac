package node

import (
	"context"
	"net/http"

	"github.com/shoestring-dns/shoestring/firmware/dnsserver"
)

// The secondary service (the secondary-service issue): zones transferred
// from primaries, NOTIFY, catalogs, outbound transfers. Stubs until then.

// startSecondary starts refresh timers and catalog consumers.
func (n *Node) startSecondary(ctx context.Context) error { return nil }

// secondaryRoutes adds the transfer endpoints to the management API.
func (n *Node) secondaryRoutes(mux *http.ServeMux) {}

// transferHandler takes NOTIFY and AXFR/IXFR from the DNS server.
func (n *Node) transferHandler() dnsserver.TransferHandler { return nil }
