// Package netconf applies the node's networking through netlink: links up
// with their MTU, static IPv4 and IPv6 addresses and routes (a default
// route per family), the anycast service addresses on lo (the boxes'
// kernels have no dummy module), the sysctls an anycast node needs, and
// DHCPv4 on a management link.
//
// Apply reconciles: it reads what the kernel has, changes only what
// differs from the config and reports each change, so applying the same
// config twice changes nothing, and an address or route dropped from the
// config is removed from the box. What it owns is well defined, so that it
// never fights other software on a box it shares: the links it is given
// (others are never touched), every address on them except IPv6 link-local
// ones (and, where router advertisements are accepted, the kernel's
// autoconfigured ones), every non-loopback address on lo, and the routes
// tagged with its routing protocol number, RouteProtocol.
//
// Manager.Run keeps it that way: it re-applies periodically and whenever a
// managed link changes, and runs the DHCP client, whose lease becomes part
// of the desired state.
package netconf
