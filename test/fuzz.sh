#!/bin/bash
# Runs every Go fuzz target in the module for a short time each
# (FUZZTIME, default 10s); fails when any target finds a failure, when the
# list of targets cannot be read, and when fewer targets than MIN_TARGETS
# are found (a target that disappears, or a package that stops building,
# is noticed rather than silently skipped).
# Fuzzing takes one target per go test invocation; one worker each
# (FUZZPARALLEL, default 1) keeps it from competing with other tests.
set -eo pipefail
t=${FUZZTIME:-10s}
par=${FUZZPARALLEL:-1}
# The targets there are today; raise it when adding one.
min=${MIN_TARGETS:-16}
log=$(mktemp)
trap 'rm -f "$log"' EXIT

pkgs=$(go list -f '{{.ImportPath}} {{.Dir}}' ./...) || { echo "FAIL: fuzz: cannot list packages"; exit 1; }
targets=()
while read -r pkg dir; do
	# Only packages with a *_test.go that declares a fuzz target are
	# listed: go test -list compiles the package's tests.
	grep -qs '^func Fuzz' "$dir"/*_test.go || continue
	if ! out=$(go test -list '^Fuzz' "$pkg" 2>&1); then
		echo "$out"
		echo "FAIL: fuzz: cannot list the fuzz targets of $pkg"
		exit 1
	fi
	for f in $(grep '^Fuzz' <<<"$out" || true); do
		targets+=("$pkg $f")
	done
done <<<"$pkgs"
if [ "${#targets[@]}" -lt "$min" ]; then
	printf '%s\n' "${targets[@]}"
	echo "FAIL: fuzz: ${#targets[@]} targets found, at least $min expected (MIN_TARGETS)"
	exit 1
fi
echo "fuzz: ${#targets[@]} targets, $t each"

fuzz_one() {
	go test -run '^$' -fuzz "^$2\$" -fuzztime "$t" -parallel "$par" "$1" >"$log" 2>&1
}

start=$(date +%s)
for tg in "${targets[@]}"; do
	read -r pkg f <<<"$tg"
	echo "fuzz $pkg $f ($t)"
	if ! fuzz_one "$pkg" "$f"; then
		# Go's fuzz coordinator can fail a target with a bare "context
		# deadline exceeded" when -fuzztime ends while a starved worker is
		# mid-call (a race in the coordinator, seen under CPU load; no input
		# is written). A hanging input gives the same message, so the target
		# runs once more: a race does not repeat, a hang does.
		if grep -q 'context deadline exceeded' "$log" && ! grep -q 'Failing input written' "$log"; then
			grep -v '^fuzz: elapsed' "$log" || true
			echo "fuzz: $f stopped at its deadline without an input; running it once more"
			if fuzz_one "$pkg" "$f"; then
				grep -v '^fuzz: elapsed' "$log" || true
				continue
			fi
		fi
		grep -v '^fuzz: elapsed' "$log"
		# The failing input is written into the package's testdata, which
		# a CI clone throws away: print it so the log alone reproduces it.
		dir=$(go list -f '{{.Dir}}' "$pkg")
		for in in $(grep -o "testdata/fuzz/$f/[0-9a-f]*" "$log" | sort -u); do
			echo "--- $dir/$in:"
			cat "$dir/$in"
		done
		echo "FAIL: fuzz $pkg $f"
		exit 1
	fi
	grep -v '^fuzz: elapsed' "$log" || true
done
echo "fuzz: ${#targets[@]} targets passed in $(($(date +%s) - start))s"
