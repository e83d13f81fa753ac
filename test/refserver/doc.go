// Package refserver runs the reference programs the tests talk to — Knot,
// NSD and BIND for DNS, BIRD and gobgpd for BGP and BFD, etcd for the
// fleet controller's shared store — as child processes: it writes their
// configuration, starts each in its own process group, waits until it
// serves, shows its log when something fails, and stops it (with every
// child it forked) when the test or command ends.
//
// Tests use the functions that take a testing.TB (StartKnot and the other
// Start… functions, Run, Port): they fail with the daemon's log, stop it in
// t.Cleanup, and, through testenv, skip when a program is missing (fail
// under CI=true). Commands (the benchmark, the lab) use the parts that
// return errors: the config writers (KnotConfig.Write and the like), Start,
// FreePort and KillAll, and stop what they started themselves.
package refserver
