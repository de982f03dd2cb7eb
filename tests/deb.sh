#!/usr/bin/env bash
# `make deb-test`: the package `make deb` built, through its whole life on
# this machine with dpkg itself. Usage: tests/deb.sh [PACKAGE.deb]
# (default: TARGET_DIR/debian/hayate_VERSION_ARCH.deb). Needs root.
#
#   1. the .deb: control fields, conffiles, maintainer scripts, and the
#      exact file list, all root-owned (nothing needs a fixed user: the
#      unit's DynamicUser=yes allocates one);
#   2. dpkg -i: /usr/bin/hayate --version, --check-config on the packaged
#      /etc/hayate/tracker.conf and with the unit's own ExecReload check,
#      the unit in /usr/lib/systemd/system running /usr/bin/hayate and
#      otherwise contrib/hayate.service unchanged, dpkg -L, dpkg --verify;
#   3. a local edit to tracker.conf survives installing the package again
#      (the upgrade path), without a conffile prompt;
#   4. dpkg -r: binary and unit gone, only the edited conffile left, state
#      config-files;
#   5. dpkg -P: /etc/hayate gone, no record of the package left;
#   6. the same life with systemd "running": in a private mount namespace
#      with /run/systemd/system and a systemctl that only logs its
#      arguments, the maintainer scripts must call exactly daemon-reload
#      (install), daemon-reload + try-restart (upgrade; never enable or
#      start), stop + daemon-reload (remove), daemon-reload (purge), and the
#      purge must delete `systemctl enable`'s symlink.
#
# It refuses to run when a hayate package (or /etc/hayate, /usr/bin/hayate)
# is already on the machine: it would remove it. Whatever happens, it
# purges the package it installed. Any mismatch: "deb-test: FAIL: ...", exit 1.
set -euo pipefail
self=$(readlink -f "$0")
cd "$(dirname "$self")/.."

die() { echo "deb-test: FAIL: $*" >&2; exit 1; }
ok() { echo "deb-test: ok: $*"; }

version=$(awk -F'"' '/^\[/ { pkg = ($0 == "[package]") }
    pkg && /^version *=/ { print $2; exit }' Cargo.toml)
version=${version//-/\~}
arch=$(dpkg --print-architecture)
deb=$(readlink -f "${1:-${TARGET_DIR:-target}/debian/hayate_${version}_${arch}.deb}")
unit=/usr/lib/systemd/system/hayate.service
wants=/etc/systemd/system/multi-user.target.wants/hayate.service

# "installed", "config-files", ... or "not-installed" when dpkg has no record.
pkg_state() {
    local s
    s=$(dpkg-query -W -f='${db:Status-Status}' hayate 2>/dev/null) || s=
    echo "${s:-not-installed}"
}

# dpkg ACTION... with its output kept in $tmp/dpkg.log and shown on failure;
# stdin is /dev/null, so a conffile prompt is a failure, not a hang.
dpkg_run() {
    if ! dpkg "$@" >"$tmp/dpkg.log" 2>&1 </dev/null; then
        cat "$tmp/dpkg.log" >&2
        die "dpkg $* failed"
    fi
}

expect_state() {
    [ "$(pkg_state)" = "$1" ] || die "$2: package state $(pkg_state), expected $1"
}

# The installed package's paths as dpkg -L lists them.
installed_list() {
    cat <<'EOF'
/.
/etc
/etc/hayate
/etc/hayate/tracker.conf
/usr
/usr/bin
/usr/bin/hayate
/usr/lib
/usr/lib/systemd
/usr/lib/systemd/system
/usr/lib/systemd/system/hayate.service
EOF
}

# Phase 6, run by phase 5 in its own mount namespace (see the end).
systemd_phase() {
    mount -t tmpfs tmpfs /run
    mkdir -p /run/systemd/system
    [ -d /etc/systemd/system ] || die "no /etc/systemd/system to mount over"
    mount -t tmpfs tmpfs /etc/systemd/system
    mkdir -p "$tmp/bin"
    printf '#!/bin/sh\necho "$*" >> "%s"\n' "$tmp/systemctl.log" > "$tmp/bin/systemctl"
    chmod 0755 "$tmp/bin/systemctl"
    export PATH=$tmp/bin:$PATH

    # calls STEP EXPECTED...: systemctl was called with exactly these
    # argument lines since the last check.
    calls() {
        local step=$1 got want
        shift
        got=$(cat "$tmp/systemctl.log" 2>/dev/null || true)
        want=$(printf '%s\n' "$@")
        : > "$tmp/systemctl.log"
        [ "$got" = "$want" ] ||
            die "systemd phase, $step: systemctl called with [${got//$'\n'/; }], expected [${want//$'\n'/; }]"
    }

    dpkg_run -i "$deb"
    calls "dpkg -i" daemon-reload
    dpkg_run -i "$deb"
    calls "dpkg -i again (upgrade)" daemon-reload "try-restart hayate.service"
    mkdir -p "$(dirname "$wants")"
    ln -s "$unit" "$wants"
    dpkg_run -r hayate
    calls "dpkg -r" "stop hayate.service" daemon-reload
    [ -L "$wants" ] || die "systemd phase: dpkg -r deleted the enable symlink (only purge should)"
    dpkg_run -P hayate
    calls "dpkg -P" daemon-reload
    [ ! -L "$wants" ] || die "systemd phase: dpkg -P left $wants"
    expect_state not-installed "systemd phase, dpkg -P"
}

if [ "${HAYATE_DEB_TEST_PHASE:-}" = systemd ]; then
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    systemd_phase
    exit 0
fi

[ "$(id -u)" = 0 ] || { echo "deb-test: needs root (dpkg -i): sudo $0" >&2; exit 2; }
[ -f "$deb" ] || { echo "deb-test: $deb missing (make deb)" >&2; exit 2; }
if [ "$(pkg_state)" != not-installed ]; then
    echo "deb-test: refusing to run: a hayate package is already on this machine" \
        "(state $(pkg_state)) and this test would remove it; dpkg -P hayate first" >&2
    exit 2
fi
for f in /etc/hayate /usr/bin/hayate "$unit" /lib/systemd/system/hayate.service; do
    if [ -e "$f" ]; then
        echo "deb-test: refusing to run: $f exists (not from a package); the test would replace it" >&2
        exit 2
    fi
done

tmp=$(mktemp -d)
installed=0
cleanup() {
    local rc=$?
    if [ "$installed" = 1 ] && [ "$(pkg_state)" != not-installed ]; then
        echo "deb-test: purging the hayate package this test installed" >&2
        dpkg -P hayate >/dev/null 2>&1 || echo "deb-test: dpkg -P hayate failed: purge it by hand" >&2
    fi
    rm -rf "$tmp"
    exit "$rc"
}
trap cleanup EXIT

# 1. The package file.
field() { dpkg-deb --field "$deb" "$1"; }
for kv in Package=hayate "Version=$version" "Architecture=$arch" Section=net Priority=optional; do
    [ "$(field "${kv%%=*}")" = "${kv#*=}" ] ||
        die "control field ${kv%%=*} is '$(field "${kv%%=*}")', expected '${kv#*=}'"
done
[[ "$(field Depends)" =~ ^libc6([ ,]|$) ]] || die "Depends '$(field Depends)' does not start with libc6"
[ -n "$(field Maintainer)" ] || die "no Maintainer field"
[ -n "$(field Description)" ] || die "no Description field"
[[ "$(field Installed-Size)" =~ ^[0-9]+$ ]] || die "Installed-Size '$(field Installed-Size)'"
dpkg-deb --control "$deb" "$tmp/control"
[ "$(cat "$tmp/control/conffiles" 2>/dev/null)" = /etc/hayate/tracker.conf ] ||
    die "conffiles is '$(cat "$tmp/control/conffiles" 2>/dev/null)', expected /etc/hayate/tracker.conf"
for s in postinst prerm postrm; do
    [ -x "$tmp/control/$s" ] || die "$s missing or not executable"
    sh -n "$tmp/control/$s" || die "$s: shell syntax error"
done
got=$(dpkg-deb --contents "$deb" | awk '{ print $1, $2, $6 }')
want="drwxr-xr-x root/root ./
drwxr-xr-x root/root ./etc/
drwxr-xr-x root/root ./etc/hayate/
-rw-r--r-- root/root ./etc/hayate/tracker.conf
drwxr-xr-x root/root ./usr/
drwxr-xr-x root/root ./usr/bin/
-rwxr-xr-x root/root ./usr/bin/hayate
drwxr-xr-x root/root ./usr/lib/
drwxr-xr-x root/root ./usr/lib/systemd/
drwxr-xr-x root/root ./usr/lib/systemd/system/
-rw-r--r-- root/root ./usr/lib/systemd/system/hayate.service"
[ "$got" = "$want" ] || die "package contents (mode owner path):
$got
expected:
$want"
dpkg-deb --extract "$deb" "$tmp/data"
ok "$(basename "$deb"): fields, conffiles, scripts, 11 entries all root-owned"

# 2. Install.
installed=1
dpkg_run -i "$deb"
expect_state installed "dpkg -i"
grep -q "not enabled" "$tmp/dpkg.log" || die "dpkg -i: postinst did not say the service is not enabled"
[ "$(/usr/bin/hayate --version)" = "hayate ${version//\~/-}" ] ||
    die "/usr/bin/hayate --version says '$(/usr/bin/hayate --version 2>&1)'"
out=$(/usr/bin/hayate --config /etc/hayate/tracker.conf --check-config 2>&1) ||
    die "hayate --config /etc/hayate/tracker.conf --check-config failed: $out"
[[ "$out" == *"config ok"* ]] || die "--check-config printed '$out', not 'config ok'"
cmp -s /etc/hayate/tracker.conf "$tmp/data/etc/hayate/tracker.conf" ||
    die "/etc/hayate/tracker.conf differs from the packaged one"
[ -f "$unit" ] || die "$unit missing"
grep -q '^ExecStart=/usr/bin/hayate ' "$unit" || die "$unit: no ExecStart=/usr/bin/hayate"
! grep -q '^[^#]*/usr/local' "$unit" || die "$unit still names /usr/local"
sed 's|^\(Exec[A-Za-z]*=\)/usr/bin/hayate |\1/usr/local/bin/hayate |' "$unit" |
    cmp -s - contrib/hayate.service ||
    die "$unit differs from contrib/hayate.service by more than the binary's path"
# The unit's reload check: ExecReload's first command, as systemd would run it.
reload=$(sed -n 's/^ExecReload=\(\/usr\/bin\/hayate .*--check-config\)$/\1/p' "$unit")
[ -n "$reload" ] || die "$unit: no ExecReload=/usr/bin/hayate ... --check-config"
out=$($reload 2>&1) || die "the unit's reload check ($reload) failed: $out"
got=$(dpkg -L hayate | LC_ALL=C sort)
[ "$got" = "$(installed_list)" ] || die "dpkg -L hayate:
$got
expected:
$(installed_list)"
out=$(dpkg --verify hayate) && [ -z "$out" ] || die "dpkg --verify hayate: $out"
[ "$(dpkg-query -W -f='${Conffiles}' hayate | awk '{ print $1 }')" = /etc/hayate/tracker.conf ] ||
    die "dpkg does not record /etc/hayate/tracker.conf as a conffile"
ok "dpkg -i: $(/usr/bin/hayate --version), config ok, unit runs /usr/bin/hayate, dpkg -L and --verify match"

# 3. Install again (dpkg's upgrade path) over a local edit.
echo "# deb-test: a local edit" >> /etc/hayate/tracker.conf
cp /etc/hayate/tracker.conf "$tmp/edited.conf"
dpkg_run -i "$deb"
expect_state installed "dpkg -i again"
cmp -s /etc/hayate/tracker.conf "$tmp/edited.conf" || die "dpkg -i again overwrote the edited tracker.conf"
out=$(/usr/bin/hayate --config /etc/hayate/tracker.conf --check-config 2>&1) ||
    die "--check-config after the upgrade failed: $out"
ok "dpkg -i again: the edited tracker.conf kept, no prompt"

# 4. Remove: the conffile stays.
dpkg_run -r hayate
expect_state config-files "dpkg -r"
dpkg -s hayate | grep -qx 'Status: deinstall ok config-files' ||
    die "dpkg -s hayate after dpkg -r: $(dpkg -s hayate | grep '^Status')"
for f in /usr/bin/hayate "$unit" /lib/systemd/system/hayate.service; do
    [ ! -e "$f" ] || die "dpkg -r left $f"
done
left=$(find /etc/hayate)
[ "$left" = $'/etc/hayate\n/etc/hayate/tracker.conf' ] || die "dpkg -r: /etc/hayate holds: $left"
cmp -s /etc/hayate/tracker.conf "$tmp/edited.conf" || die "dpkg -r changed the edited tracker.conf"
ok "dpkg -r: binary and unit gone, edited /etc/hayate/tracker.conf kept, state config-files"

# 5. Purge.
dpkg_run -P hayate
expect_state not-installed "dpkg -P"
[ ! -e /etc/hayate ] || die "dpkg -P left /etc/hayate: $(find /etc/hayate)"
ok "dpkg -P: /etc/hayate gone, no record of hayate"

# 6. The maintainer scripts' systemd side, without touching this machine's
# /run or /etc/systemd: both are tmpfs mounts in the namespace.
if unshare --mount --propagation private true 2>/dev/null; then
    HAYATE_DEB_TEST_PHASE=systemd unshare --mount --propagation private "$self" "$deb" ||
        die "systemd phase (above)"
    ok "with systemd running: daemon-reload; daemon-reload, try-restart; stop, daemon-reload; daemon-reload; purge deleted the enable symlink"
else
    echo "deb-test: SKIPPED the systemd phase: no mount namespace here (unshare --mount failed)"
fi
expect_state not-installed "the end"
echo "deb-test: all passed; hayate purged"
