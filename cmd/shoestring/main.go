// Command shoestring is the single firmware binary: /init when it runs as
// process 1 on a box, otherwise a command with subcommands — run (a node
// from a config file), dev (a node on loopback with no config), ctl (the
// management client).
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/shoestring-dns/shoestring/firmware/kmod"
	"github.com/shoestring-dns/shoestring/firmware/pid1"
	"github.com/shoestring-dns/shoestring/firmware/tenant"
	"github.com/shoestring-dns/shoestring/firmware/tenant/control"
)

const usage = `shoestring — anycast authoritative DNS node firmware

Usage:
  shoestring dev  [flags]          a node on loopback, no config needed (make run)
  shoestring run  -config FILE     a node described by a config file
  shoestring host -config FILE     a multi-tenant host: each tenant's name server isolated, one BGP speaker
  shoestring ctl  [-api ADDR] CMD  talk to a node's management API
  shoestring launch -slots DIR -- run ...   start the committed (or trial) binary slot (systemd ExecStart)
  shoestring bundle CMD            make, sign and check OTA bundles (keygen, create, verify, info)
  shoestring version

Run "shoestring CMD -h" for a command's flags.
`

var version = "dev"

func main() {
	// On a box the kernel starts us as /init, and runs /sbin/modprobe
	// (a link to us) for its own module requests. A host's tenant is
	// process 1 of its own PID namespace, and not the box's init.
	if pid1.IsInit() && !tenant.IsTenant() {
		pid1.Main(version)
	}
	if filepath.Base(os.Args[0]) == "modprobe" {
		os.Exit(kmod.Modprobe(os.Args[1:]))
	}
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	cmd, args := os.Args[1], os.Args[2:]
	var err error
	switch cmd {
	case "dev":
		err = devMain(args)
	case "run":
		err = runMain(args)
	case "host":
		err = hostMain(args)
	case tenant.InitCommand:
		err = tenant.Init()
	case tenant.ServeCommand:
		err = tenant.Serve(control.Serve)
	case "ctl":
		err = ctlMain(args)
	case "launch":
		err = launchMain(args)
	case "bundle":
		os.Exit(bundleRun(args, os.Stdout, os.Stderr))
	case "version", "-version", "--version":
		fmt.Println("shoestring", version)
	case "help", "-h", "--help":
		fmt.Print(usage)
	default:
		fmt.Fprintf(os.Stderr, "shoestring: unknown command %q\n\n%s", cmd, usage)
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "shoestring:", err)
		os.Exit(1)
	}
}
