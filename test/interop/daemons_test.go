package interop

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shoestring-dns/shoestring/test/refserver"
)

// The real primaries and secondaries, each configured the way an
// operator would, on a free loopback port with everything in the test's
// temp directory: package refserver runs them.

// proc is a daemon (or node) under test, stopped when the test ends.
type proc = refserver.Proc

// stopGrace is how long a daemon gets to stop on SIGTERM.
const stopGrace = 5 * time.Second

func startProc(t *testing.T, name string, argv ...string) *proc {
	t.Helper()
	return refserver.Run(t, refserver.Command{Name: name, Argv: argv})
}

// tsigKey turns name, algorithm, secret into a refserver key (nil for
// none).
func tsigKey(key []string) *refserver.Key {
	if len(key) != 3 {
		return nil
	}
	return &refserver.Key{Name: key[0], Algorithm: key[1], Secret: key[2]}
}

// nsdServer is NSD as a primary.
type nsdServer struct{ *refserver.Server }

// startNSD serves zones (origin → text), providing transfers to
// 127.0.0.1 and notifying notify (host:port) of changes.
func startNSD(t *testing.T, zones map[string]string, notify string) *nsdServer {
	t.Helper()
	return startNSDWithKey(t, zones, notify, nil)
}

// startNSDWithKey is startNSD with transfers and NOTIFY signed with key
// (name, algorithm, secret) when it is not nil.
func startNSDWithKey(t *testing.T, zones map[string]string, notify string, key []string) *nsdServer {
	t.Helper()
	var zs []refserver.Zone
	for _, origin := range slices.Sorted(func(yield func(string) bool) {
		for o := range zones {
			if !yield(o) {
				return
			}
		}
	}) {
		zs = append(zs, refserver.Zone{Origin: origin, Text: zones[origin]})
	}
	return &nsdServer{refserver.StartNSD(t, refserver.NSDConfig{Zones: zs, Notify: notify, Key: tsigKey(key)})}
}

// restart starts NSD again on the same config after stop.
func (s *nsdServer) restart(t *testing.T, origin string) {
	t.Helper()
	s.Restart(t, origin)
}

// update rewrites a zone's file and has NSD reload it (SIGHUP), which
// sends NOTIFY to the configured secondary.
func (s *nsdServer) update(t *testing.T, origin, text string) {
	t.Helper()
	writeFile(t, s.ZoneFile(origin), text)
	s.Reload(t)
}

// knotServer is Knot DNS, as a primary (optionally generating a catalog)
// or as a secondary.
type knotServer struct{ *refserver.Knot }

// knotConfig and knotZone describe it: zones served from Text as a
// primary (optionally members of the generated catalog), or as a
// secondary of Primary.
type (
	knotConfig = refserver.KnotConfig
	knotZone   = refserver.Zone
)

// startKnot runs knotd with a journal (so that it serves IXFR) from a
// configuration database, so that zones can be added and removed at run
// time through knotc the way an operator adds a catalog member.
func startKnot(t *testing.T, kc knotConfig) *knotServer {
	t.Helper()
	kc.Journal, kc.Editable = true, true
	return &knotServer{refserver.StartKnot(t, kc)}
}

// addMember adds a zone to Knot as a member of its generated catalog.
func (k *knotServer) addMember(t *testing.T, origin, catalog, text string) {
	t.Helper()
	writeFile(t, k.ZoneFile(origin), text)
	z := "zone[" + origin + "]"
	k.Ctl(t, []string{"conf-begin"}, []string{"conf-set", z}, []string{"conf-set", z + ".file", k.ZoneFile(origin)},
		[]string{"conf-set", z + ".catalog-role", "member"}, []string{"conf-set", z + ".catalog-zone", catalog},
		[]string{"conf-commit"})
}

// removeZone removes a zone from Knot (and from its generated catalog).
func (k *knotServer) removeZone(t *testing.T, origin string) {
	t.Helper()
	k.Ctl(t, []string{"conf-begin"}, []string{"conf-unset", "zone[" + origin + "]"}, []string{"conf-commit"})
}

// set changes one record set through a zone transaction: Knot bumps the
// serial, journals the change (so it serves IXFR) and sends NOTIFY.
func (k *knotServer) set(t *testing.T, origin, owner, ttl, rtype, data string) {
	t.Helper()
	k.Ctl(t, []string{"zone-begin", origin}, []string{"zone-unset", origin, owner, rtype},
		[]string{"zone-set", origin, owner, ttl, rtype, data}, []string{"zone-commit", origin})
}

// add adds records in one zone transaction; each is "owner ttl type data".
func (k *knotServer) add(t *testing.T, origin string, records ...string) {
	t.Helper()
	cmds := [][]string{{"zone-begin", origin}}
	for _, r := range records {
		cmds = append(cmds, append([]string{"zone-set", origin}, strings.Fields(r)...))
	}
	k.Ctl(t, append(cmds, []string{"zone-commit", origin})...)
}

// bindServer is BIND's named as a primary of one zone.
type bindServer struct {
	*refserver.Server
	origin string
}

// startBIND serves one zone, transfers only to requests signed with key
// (name, algorithm, secret), computes IXFR from zone file differences,
// and sends signed NOTIFY to notify.
func startBIND(t *testing.T, origin, text string, key []string, notify string) *bindServer {
	t.Helper()
	s := refserver.StartBIND(t, refserver.BINDConfig{Zones: []refserver.Zone{{Origin: origin, Text: text}}, Key: tsigKey(key), Notify: notify})
	return &bindServer{Server: s, origin: origin}
}

// update rewrites the zone file and has named reload it (SIGHUP).
func (b *bindServer) update(t *testing.T, text string) {
	t.Helper()
	writeFile(t, b.ZoneFile(b.origin), text)
	b.Reload(t)
}

// mkdir makes a directory for one program under the test's temp dir, with
// the given subdirectories.
func mkdir(t *testing.T, name string, subs ...string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), name)
	for _, s := range append([]string{""}, subs...) {
		if err := os.MkdirAll(filepath.Join(dir, s), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// writeFile replaces a file whole (refserver.WriteFile), so that a daemon
// reloading at that moment reads the old file or the new one.
func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := refserver.WriteFile(path, content); err != nil {
		t.Fatal(err)
	}
}
