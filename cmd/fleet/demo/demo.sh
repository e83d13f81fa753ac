#!/bin/bash
# make fleet: a controller and three dev nodes on loopback, then a config
# rollout across them to watch on the dashboard. Ctrl-C stops everything.
# Needs out/shoestring and out/shoestring-fleet (make builds them).
set -euo pipefail
cd "$(dirname "$0")/../../.."
BIN=out/shoestring FLEET=out/shoestring-fleet DEMO=cmd/fleet/demo
DIR=$PWD/var/fleet
PORT=${FLEET_PORT:-9080}
rm -rf "$DIR" && mkdir -p "$DIR/zones"
cp "$DEMO"/rollout.test*.zone "$DIR/zones/"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM
for i in 1 2 3; do
	"$BIN" dev -data "$DIR/n$i" -nsid "dev$i" -listen "127.0.0.1:1535$i" -http "127.0.0.1:1805$i" >"$DIR/n$i.log" 2>&1 &
	pids+=($!)
done
"$FLEET" serve -store "$DIR/fleet.db" -listen "127.0.0.1:$PORT" -poll 1s -gate-timeout 10s 2>"$DIR/fleet.log" &
pids+=($!)
export SHOESTRING_FLEET="http://127.0.0.1:$PORT"
for _ in $(seq 50); do "$FLEET" status >/dev/null 2>&1 && break; sleep 0.2; done
sed "s|@DIR@|$DIR|g" "$DEMO/inventory.yaml" > "$DIR/inventory.yaml"
"$FLEET" inventory load "$DIR/inventory.yaml"
"$FLEET" group set dev "$DEMO/template-v1.yaml"
for n in dev1 dev2 dev3; do "$FLEET" correct "$n" >/dev/null; done
sleep 2 # one poll round
echo
echo "Dashboard: http://127.0.0.1:$PORT/    (CLI: SHOESTRING_FLEET=$SHOESTRING_FLEET $FLEET nodes)"
echo
"$FLEET" nodes
echo
echo "Rolling out template-v2 (a new zone serial and a canary query), canary first:"
"$FLEET" rollout start -group dev -template "$DEMO/template-v2.yaml" -canary www.rollout.test/A
id=$("$FLEET" rollouts -json | sed -n 's/.*"id": "\(.*\)",/\1/p' | head -1)
while :; do
	state=$("$FLEET" rollout show "$id" -json | sed -n 's/^  "state": "\(.*\)",/\1/p')
	[ "$state" = running ] || break
	sleep 2
done
"$FLEET" rollout show "$id"
echo
"$FLEET" serials
echo
echo "Dashboard: http://127.0.0.1:$PORT/  — Ctrl-C stops the controller and the nodes."
wait
