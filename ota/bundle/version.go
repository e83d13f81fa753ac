package bundle

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"golang.org/x/mod/semver"
)

// A version is "semver-like": a semantic version with a leading v
// (vMAJOR.MINOR.PATCH[-PRERELEASE][+BUILD], all three numbers), optionally
// followed by what git describe appends — "-N-gHASH", N commits after
// that tag, and "-dirty". Versions are ordered by
//
//  1. the semantic version (golang.org/x/mod/semver: numbers numerically,
//     a pre-release before its release, build metadata ignored);
//  2. then N, absent being 0, so v1.2.0-3-gabc is after v1.2.0 (not before,
//     as a semver pre-release would be);
//
// and "-dirty" is ignored. Two versions equal in both with different
// hashes are builds of different commits that cannot be ordered; they
// count as not newer.

var describeRE = regexp.MustCompile(`^(.+?)(?:-([0-9]+)-g([0-9a-f]{4,40}))?(-dirty)?$`)

type version struct {
	base    string // semver
	commits int
	hash    string
}

func parseVersion(s string) (version, error) {
	m := describeRE.FindStringSubmatch(s)
	if m == nil {
		return version{}, fmt.Errorf("version %q: not semver-like (vMAJOR.MINOR.PATCH[-PRE][-N-gHASH][-dirty])", s)
	}
	v := version{base: m[1], hash: m[3]}
	core, _, _ := strings.Cut(v.base, "+")
	if !semver.IsValid(v.base) || semver.Canonical(v.base) != core {
		return version{}, fmt.Errorf("version %q: not semver-like (vMAJOR.MINOR.PATCH[-PRE][-N-gHASH][-dirty])", s)
	}
	if m[2] != "" {
		n, err := strconv.Atoi(m[2])
		if err != nil {
			return version{}, fmt.Errorf("version %q: %v", s, err)
		}
		v.commits = n
	}
	return v, nil
}

// ValidVersion reports whether s is a version a bundle may carry.
func ValidVersion(s string) error {
	_, err := parseVersion(s)
	return err
}

// CompareVersions orders two versions: -1 when a is older than b, +1
// when newer, 0 when equal or when they cannot be ordered (same place,
// different commits).
func CompareVersions(a, b string) (int, error) {
	va, err := parseVersion(a)
	if err != nil {
		return 0, err
	}
	vb, err := parseVersion(b)
	if err != nil {
		return 0, err
	}
	if c := semver.Compare(va.base, vb.base); c != 0 {
		return c, nil
	}
	switch {
	case va.commits < vb.commits:
		return -1, nil
	case va.commits > vb.commits:
		return 1, nil
	}
	return 0, nil
}

// checkNewer returns nil when bundle is newer than running. A running
// version that is not semver-like (a development build: "dev", a bare
// commit hash) is older than any bundle.
func checkNewer(bundle, running string) error {
	if _, err := parseVersion(running); err != nil {
		return nil
	}
	c, err := CompareVersions(bundle, running)
	if err != nil {
		return err
	}
	switch {
	case c > 0:
		return nil
	case c == 0 && bundle == running:
		return fmt.Errorf("%w: bundle version %s is the running version (allow-downgrade to reinstall)", ErrVersion, bundle)
	case c == 0:
		return fmt.Errorf("%w: bundle version %s is not newer than the running %s (same place, another commit; allow-downgrade to install)", ErrVersion, bundle, running)
	}
	return fmt.Errorf("%w: bundle version %s is older than the running %s (allow-downgrade to install)", ErrVersion, bundle, running)
}
