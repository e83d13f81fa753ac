// Command shoestring-fleet is the fleet controller and its CLI: `serve`
// runs the controller (inventory, polling, desired config, the serial
// check, staged rollouts, catchment measurements, the dashboard and
// Prometheus http_sd); every other subcommand talks to a running
// controller's API. See README.md.
package main

import (
	"fmt"
	"os"
)

const usage = `shoestring-fleet: the Shoestring fleet controller (README: cmd/fleet/README.md)

  serve [flags]                         run the controller (see serve -h)
  status [-json]                        overall colour and exceptions
  nodes [-json]                         the inventory with live state
  node add -name N -api HOST:PORT ...   add or replace a node (see node add -h)
  node rm NAME
  inventory load FILE.yaml              add or replace the nodes of a file
  group set NAME TEMPLATE [-force]      a group's config template (first one; -force replaces)
  groups [-json]
  drift [-json]                         nodes whose running config is not the desired one
  correct NODE                          apply a node's desired config now (no gates)
  serials [-json]                       the SOA serial check
  rollout start -group G -template FILE [-canary NAME/TYPE ...]
  rollouts [-json]
  rollout show ID [-json]
  rollout keep|revert|resume ID
  quarantine [-json] | quarantine clear RELEASE
  catchment run -targets FILE [-target ADDR ...] [-sender NODE|all] [-rate N] [-dns] [-label L]
  catchment show [ID] | list | diff [FROM TO]   which node each target prefix reaches
  sd                                    the Prometheus http_sd document

The controller is at $SHOESTRING_FLEET (default http://127.0.0.1:9080), or -c URL first.
`

func main() {
	args := os.Args[1:]
	base := os.Getenv("SHOESTRING_FLEET")
	if base == "" {
		base = "http://127.0.0.1:9080"
	}
	if len(args) >= 2 && args[0] == "-c" {
		base, args = args[1], args[2:]
	}
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	var err error
	if args[0] == "serve" {
		err = serveMain(args[1:])
	} else {
		err = cliMain(newCLI(base), args)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "shoestring-fleet:", err)
		os.Exit(1)
	}
}
