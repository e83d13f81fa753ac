package diff

import (
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shoestring-dns/shoestring/test/testenv"
)

// The corpus is pinned: corpusSize cases, of which Knot and NSD agree on
// refsAgree (on rcode, AA, TC, answer and authority); the others are
// skipped as "references disagree" and compare nothing. A case that drifts
// into disagreement (a new Knot or NSD, a changed zone or query) would
// silently stop testing Shoestring, so any change to either number fails
// the run until someone has looked at the cases and updated the pin.
const (
	corpusSize = 398
	refsAgree  = 368
)

// thirdAnswers are the cases where Knot and NSD disagree and Shoestring
// gives neither's answer (on the fields of the bar), found when these
// cases stopped being skipped. Each is a finding to settle — a reason
// to keep it, or a change to one reference's answer — not a verdict;
// a new case here fails the run, and so does one that comes to match a
// reference.
var thirdAnswers = map[string]string{
	"qtype/example.com._IXFR":             "IXFR over UDP without an SOA: NOTIMP (knot NOTAUTH, nsd REFUSED)",
	"qtype/www.example.com._A+class255":   "QCLASS ANY: REFUSED (both answer from class IN, knot with AA)",
	"opcode/example.com._SOA+opcode4":     "opcode NOTIFY for a zone it serves: NOTAUTH with AA set (knot NOTAUTH without AA, nsd REFUSED)",
	"dnssec-nsec/nsec.test._RRSIG+do":     "QTYPE RRSIG with DO: neither knot's one RRSIG nor nsd's all of them",
	"dnssec-nsec3/nsec3.test._RRSIG+do":   "QTYPE RRSIG with DO: neither knot's one RRSIG nor nsd's all of them",
	"dnssec-optout/optout.test._RRSIG+do": "QTYPE RRSIG with DO: neither knot's one RRSIG nor nsd's all of them",
}

// queryTimeout bounds one query. Loopback answers take well under a
// millisecond; only the malformed queries a server may drop wait it out.
const queryTimeout = 1500 * time.Millisecond

// maxSilent is how many cases in a row Shoestring may leave unanswered
// where the references answer before the run stops: a hung server would
// otherwise cost a timeout per case.
const maxSilent = 15

func TestDifferential(t *testing.T) {
	testenv.RequireRoot(t)
	refsOnly := os.Getenv("SHOESTRING_DIFF_REFS_ONLY") == "1"
	verbose := os.Getenv("SHOESTRING_DIFF_VERBOSE") == "1"

	zones := prepareZones(t)
	servers := []*server{startKnot(t, zones), startNSD(t, zones)}
	if refsOnly {
		t.Log("SHOESTRING_DIFF_REFS_ONLY=1: comparing Knot with NSD only")
	} else {
		servers = append(servers, startShoestring(t, zones))
	}

	// Cases run one after another (no t.Parallel): the servers share two
	// cores with the rest of the test suite, and the counters below need no
	// locking.
	cases := buildCorpus()
	if len(cases) != corpusSize {
		t.Fatalf("the corpus has %d cases, pinned at %d: if cases were added or removed on purpose, run the suite, check the new cases' results and update corpusSize (and refsAgree)", len(cases), corpusSize)
	}
	var (
		ran, agreed int
		fully       int // agreed also on header, question and EDNS
		shoeAgreed  int
		addlDiffers int
		silent      int // consecutive cases shoestring did not answer and knot did
		// Where the references disagree: shoestring answers as knot,
		// as nsd, or (a case in thirdAnswers) as neither.
		asKnot, asNSD, asNeither int
		disagree                 = map[string][]string{} // category -> "case (fields)"
		mismatch                 = map[string][]string{} // category -> "case (fields)"
	)
	for _, c := range cases {
		ok := t.Run(c.Name, func(t *testing.T) {
			outs := make([]Outcome, len(servers))
			var wg sync.WaitGroup
			for i, s := range servers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					outs[i] = exchange(s.Addr, c.Q, queryTimeout)
					outs[i].Server = s.Name
				}()
			}
			wg.Wait()
			for _, s := range servers {
				select {
				case <-s.Done():
					// A crash is worth more than every later mismatch it
					// would cause: stop here, with the log.
					t.Fatalf("%s exited during this case (%s): %v\n--- %s log ---\n%s", s.Name, c.Q, s.Err(), s.Name, s.Log())
				default:
				}
			}
			ran++
			if testing.Verbose() {
				t.Logf("%s\n  knot: %s", c.Q, outs[0].brief())
			}
			kv, nv := makeView(outs[0]), makeView(outs[1])
			refDiff := compare(kv, nv)
			if bar := onlyBar(refDiff, true); len(bar) > 0 {
				// No single right answer, but not any answer either:
				// Shoestring must give one of the two on every field of
				// the bar (a third behaviour, or half of each, fails).
				disagree[c.Category] = append(disagree[c.Category], fmt.Sprintf("%s (%s)", c.Name, fieldNames(bar)))
				msg := fmt.Sprintf("references disagree on %s", fieldNames(bar))
				if verbose {
					msg += "\n" + report(c, "nsd differs from knot:", refDiff, outs)
				}
				t.Log(msg)
				if len(servers) < 3 {
					return
				}
				sv := makeView(outs[2])
				switch dk, dn := onlyBar(compare(kv, sv), true), onlyBar(compare(nv, sv), true); {
				case len(dk) == 0:
					asKnot++
				case len(dn) == 0:
					asNSD++
				default:
					if why, ok := thirdAnswers[c.Name]; ok {
						asNeither++
						t.Logf("shoestring gives neither's answer, known: %s", why)
						return
					}
					t.Errorf("%s", report(c, fmt.Sprintf("the references disagree on %s, and shoestring gives neither's answer; from knot's it differs in:", fieldNames(bar)), dk, outs))
				}
				if _, ok := thirdAnswers[c.Name]; ok {
					t.Errorf("shoestring now gives a reference's answer here: take the case out of thirdAnswers")
				}
				return
			}
			agreed++
			// Fields outside the bar on which the references differ say
			// nothing about what is right, so they are not held against
			// Shoestring either.
			unsure := map[string]bool{}
			for _, f := range refDiff {
				unsure[f.Field] = true
			}
			if len(unsure) == 0 {
				fully++
			}
			if len(servers) < 3 {
				return
			}
			sv := makeView(outs[2])
			if outs[2].Msg == nil && outs[0].Msg != nil {
				silent++
				if silent >= maxSilent {
					t.Fatalf("shoestring has not answered %d cases in a row that the references answer; stopping\n--- shoestring log ---\n%s", silent, servers[2].Log())
				}
			} else {
				silent = 0
			}
			if nk, nn := additionalDiff(kv, sv), additionalDiff(nv, sv); nk > 0 && nn > 0 {
				addlDiffers++
				t.Logf("additional section: %d RRs differ from knot's, %d from nsd's (reported, not failed)", nk, nn)
			}
			var d []fieldDiff
			for _, f := range compare(kv, sv) {
				if !unsure[f.Field] {
					d = append(d, f)
				}
			}
			if len(d) == 0 {
				shoeAgreed++
				return
			}
			mismatch[c.Category] = append(mismatch[c.Category], fmt.Sprintf("%s (%s)", c.Name, fieldNames(d)))
			headline := "shoestring differs from knot and nsd, which agree:"
			if len(unsure) > 0 {
				headline = fmt.Sprintf("shoestring differs from knot and nsd, which agree (except on %s, not compared):", fieldNames(refDiff))
			}
			t.Errorf("%s", report(c, headline, d, outs))
		})
		if !ok && (crashed(servers) || silent >= maxSilent) {
			break
		}
	}

	var sum strings.Builder
	fmt.Fprintf(&sum, "%d cases, %d where knot and nsd agree on rcode, AA, TC, answer and authority (%d also on the rest of the header, question and EDNS)", ran, agreed, fully)
	if len(servers) == 3 {
		fmt.Fprintf(&sum, ", shoestring agrees on %d of %d", shoeAgreed, agreed)
		fmt.Fprintf(&sum, "; its additional section matches neither reference's in %d (not failed)", addlDiffers)
	}
	sum.WriteString("\n")
	writeGroups(&sum, fmt.Sprintf("references disagree (shoestring answers as knot in %d, as nsd in %d, as neither in %d known cases)", asKnot, asNSD, asNeither), disagree)
	writeGroups(&sum, "shoestring mismatches", mismatch)
	t.Log("summary:\n" + sum.String())
	switch {
	case ran < len(cases):
		// Stopped early (a crash, a silent server): reported above.
	case agreed < refsAgree:
		t.Errorf("knot and nsd agree on %d of %d cases, pinned at %d: %d cases drifted into \"references disagree\" and no longer test shoestring (see the summary); find out why before updating refsAgree",
			agreed, ran, refsAgree, refsAgree-agreed)
	case agreed > refsAgree:
		t.Errorf("knot and nsd agree on %d of %d cases, pinned at %d: %d more than before; check that those cases compare what they mean to, then update refsAgree",
			agreed, ran, refsAgree, agreed-refsAgree)
	}
	if len(servers) == 3 && shoeAgreed < agreed {
		t.Errorf("shoestring differs from the references in %d of %d cases (see the failed subtests above)", agreed-shoeAgreed, agreed)
	}
}

// report is the text for one case where a server differs: the query, the
// differences, then each server's full response, dig-style.
func report(c Case, headline string, d []fieldDiff, outs []Outcome) string {
	var b strings.Builder
	fmt.Fprintf(&b, "\nquery: %s\nabout: %s\n%s\n%s", c.Q, c.Note, headline, formatDiffs(d))
	for _, o := range outs {
		fmt.Fprintf(&b, "---------------- %s ----------------\n%s\n", o.Server, o.digString())
	}
	return b.String()
}

func writeGroups(b *strings.Builder, title string, groups map[string][]string) {
	if len(groups) == 0 {
		return
	}
	var cats []string
	n := 0
	for c, l := range groups {
		cats = append(cats, c)
		n += len(l)
	}
	sort.Strings(cats)
	fmt.Fprintf(b, "%s: %d\n", title, n)
	for _, c := range cats {
		fmt.Fprintf(b, "  %s: %d\n", c, len(groups[c]))
		for _, s := range groups[c] {
			fmt.Fprintf(b, "    %s\n", s)
		}
	}
}

// onlyBar returns the differences in bar fields (bar true) or in the
// others (bar false).
func onlyBar(d []fieldDiff, bar bool) []fieldDiff {
	var out []fieldDiff
	for _, f := range d {
		if barFields[f.Field] == bar {
			out = append(out, f)
		}
	}
	return out
}

func crashed(servers []*server) bool {
	for _, s := range servers {
		if s.Exited() {
			return true
		}
	}
	return false
}
