#!/usr/bin/env bash
# Acceptance check of the README's two commands on a fresh Debian 12: debootstraps a minimal
# bookworm into DIR, clones this repository's HEAD into it, and runs
#   tools/setup.sh && build/mla-bench quickstart      then      tools/test.sh
# inside the chroot, printing the wall time of each. Needs root and debootstrap; downloads the
# Debian packages and torch (several GB). Usage: sudo tools/fresh_debian_check.sh [DIR]
set -euo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)
R=${1:-/tmp/mlab-fresh-debian12}
[ "$(id -u)" = 0 ] || { echo "run as root (chroot, mount)" >&2; exit 2; }
if [ ! -x "$R/bin/bash" ]; then
  debootstrap --variant=minbase bookworm "$R" http://deb.debian.org/debian
fi
cp /etc/resolv.conf "$R/etc/resolv.conf"
# Machines behind a TLS-intercepting proxy need its CA bundle and pip settings inside too.
[ -f /etc/pip.conf ] && cp /etc/pip.conf "$R/etc/pip.conf"
[ -f /etc/ssl/certs/ca-certificates.crt ] && mkdir -p "$R/etc/ssl/certs" &&
  cp /etc/ssl/certs/ca-certificates.crt "$R/etc/ssl/certs/ca-certificates.crt"
mountpoint -q "$R/proc" || mount -t proc proc "$R/proc"
mountpoint -q "$R/dev" || mount --rbind /dev "$R/dev"
rm -rf "$R/root/mla-bench"
git clone -q "$SRC" "$R/root/mla-bench"
cat > "$R/root/fresh.sh" <<'INNER'
#!/bin/bash
cd /root/mla-bench
s=$(date +%s)
tools/setup.sh && build/mla-bench quickstart; rc1=$?
m=$(date +%s)
tools/test.sh; rc2=$?
e=$(date +%s)
echo "fresh Debian 12: command 1 rc=$rc1 in $((m-s)) s; command 2 rc=$rc2 in $((e-m)) s"
exit $((rc1 || rc2))
INNER
chmod +x "$R/root/fresh.sh"
chroot "$R" /usr/bin/env -i HOME=/root TERM=dumb \
  PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin /root/fresh.sh
