#!/bin/bash
# Runs every Go fuzz target in the module for a short time each
# (FUZZTIME, default 10s); fails when any target finds a failure.
# Fuzzing takes one target per go test invocation.
set -eo pipefail
t=${FUZZTIME:-10s}
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for pkg in $(go list ./...); do
	for f in $(go test -list '^Fuzz' "$pkg" | grep '^Fuzz' || true); do
		echo "fuzz $pkg $f ($t)"
		if ! go test -run '^$' -fuzz "^$f\$" -fuzztime "$t" "$pkg" >"$log" 2>&1; then
			grep -v '^fuzz: elapsed' "$log"
			echo "FAIL: fuzz $pkg $f"
			exit 1
		fi
		grep -v '^fuzz: elapsed' "$log" || true
	done
done
