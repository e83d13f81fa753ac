#!/bin/sh
# Installs the Debian packages named as arguments when running as root and
# any of them is missing. Outside root it only reports what is missing, so a
# developer sees why a test will skip or fail.
missing=""
for p in "$@"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
	echo "deps: not root; missing Debian packages:$missing (tests that need them skip, or fail under CI=true)" >&2
	exit 0
fi
echo "deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq || exit 1
apt-get install -y -qq --no-install-recommends $missing >/dev/null || exit 1
# Debian starts these daemons on install; the tests run their own instances.
for s in knot nsd named bind9 bird; do
	systemctl stop "$s" >/dev/null 2>&1 || service "$s" stop >/dev/null 2>&1 || true
done
exit 0
