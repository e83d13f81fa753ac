// Package lab is the anycast lab: network namespaces joined by veth links,
// a router running BIRD 2 (and GoBGP beside it), three Shoestring nodes
// started as `shoestring run -config …`, each announcing the same anycast
// addresses, and a client. Its tests prove routing follows health; its
// command (cmd/lab, `make lab`) brings it up for a person to play with.
//
//	client  eth0 10.80.100.2/24 fd80:100::2/64 ── c0 10.80.100.1 fd80:100::1 ┐
//	                                                                          router
//	node i  eth0 10.80.i.2/24   fd80:i::2/64   ── ni 10.80.i.1  fd80:i::1    ┘ (BIRD, AS 65000)
//	                                                 10.80.i.4  fd80:i::4      (gobgpd, AS 65002, port 1179)
//	node i  lo   10.53.0.53 fd53::53 (primary), 10.53.1.53 fd53:1::53 (secondary)
//
// Each node (AS 65053) announces 10.53.0.53/32 and fd53::53/128 plainly with
// community 65053:100 and large community 65053:1:2, and 10.53.1.0/24 and
// fd53:1::/48 prepended twice with community 65053:200, over one IPv4 and
// one IPv6 session to BIRD and one IPv4 session (carrying both families)
// to gobgpd. The nodes configure their own addresses and routes (network
// section); the router's and client's are set with ip(8). BIRD installs the
// anycast routes as multipath routes (kernel protocol, merge paths) and
// turns GRACEFUL_SHUTDOWN into local-pref 0; the router hashes flows on
// ports too (fib_multipath_hash_policy 1), so one client reaches all three
// nodes. Nodes n1 and n2 run BFD with BIRD (100 ms × 3); n3 does not, so
// it is found dead only by the hold time (9 s).
package lab
