#!/usr/bin/env bash
# The Debian 12 root filesystem of the end-to-end test, cached as a .tar.zst.
# Usage: tests/e2e/rootfs.sh        prints the path of the cached tarball on stdout
#
# Made with mmdebstrap from the apt sources this machine uses (the deb822 file listed below) with
# the daemons the test runs: cron, rsyslog, openssh-server, dbus, procps. The cache lives outside
# the repository ($BATON_E2E_CACHE, default /var/cache/baton-e2e), keyed on everything that goes
# into the image (suite, variant, package list, the sources file, mmdebstrap's version), so a
# changed package list makes a new one; a missing cache is made anew (about 2.3 minutes, 59 MB).
# mmdebstrap and zstd are installed with apt if missing. Needs root.
set -euo pipefail
SUITE=bookworm
VARIANT=apt
PACKAGES="cron,rsyslog,openssh-server,dbus,procps"
SOURCES=${BATON_E2E_SOURCES:-/etc/apt/sources.list.d/debian.sources}
CACHE=${BATON_E2E_CACHE:-/var/cache/baton-e2e}

missing=""
for p in mmdebstrap zstd; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ]; then
  echo "== installing:$missing" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq -o DPkg::Lock::Timeout=300 $missing >&2
fi
[ -r "$SOURCES" ] || { echo "rootfs: no apt sources file $SOURCES (set BATON_E2E_SOURCES)" >&2; exit 2; }

# Anything that changes the image changes the key.
KEY=$( { echo "$SUITE $VARIANT $PACKAGES"; cat "$SOURCES"; dpkg-query -W -f='${Version}\n' mmdebstrap; } \
       | sha256sum | cut -c1-16)
OUT=$CACHE/debian-$SUITE-$VARIANT-$KEY.tar.zst
if [ -s "$OUT" ]; then echo "$OUT"; exit 0; fi

mkdir -p "$CACHE"
exec 9>"$CACHE/.lock"
flock 9                                  # two test runs at once make it once
if [ -s "$OUT" ]; then echo "$OUT"; exit 0; fi
echo "== making the e2e root filesystem (mmdebstrap $SUITE, $VARIANT: $PACKAGES; about 2-3 minutes)" >&2
start=$(date +%s)
TMP=$OUT.tmp.$$
trap 'rm -f "$TMP"' EXIT
# The release files of a pinned or old mirror may be past their Valid-Until on this clock.
mmdebstrap --quiet --variant="$VARIANT" --include="$PACKAGES" \
  --aptopt='Acquire::Check-Valid-Until "false"' --aptopt='Acquire::Check-Date "false"' \
  --format=tar "$SUITE" - "$SOURCES" | zstd -q -T0 -o "$TMP"
mv "$TMP" "$OUT"
trap - EXIT
echo "== rootfs cached as $OUT ($(du -h "$OUT" | cut -f1), $(( $(date +%s) - start )) s)" >&2
echo "$OUT"
