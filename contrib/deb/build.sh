#!/usr/bin/env bash
# `make deb`: hayate as a Debian package, TARGET_DIR/debian/
# hayate_VERSION_ARCH.deb, built by plain `dpkg-deb --build` from a staging
# tree: dpkg-deb comes with dpkg, so nothing to install (cargo-deb would be
# a `cargo install`; debhelper a debian/ directory and its toolchain).
#
#   1. stage with `make install DESTDIR=... PREFIX=/usr`, the same layout
#      and unit rewrite (ExecStart=/usr/bin/hayate) as an install by hand,
#      the unit in /usr/lib/systemd/system, where packages put theirs;
#   2. strip the binary as dh_strip does (the release profile keeps line
#      tables for backtraces; the unstripped binary stays in
#      TARGET_DIR/release);
#   3. write DEBIAN/: control (Depends from dpkg-shlibdeps), conffiles
#      (/etc/hayate/tracker.conf), md5sums and the maintainer scripts
#      beside this file;
#   4. dpkg-deb --build --root-owner-group: every file root-owned. No user
#      is created: the unit's DynamicUser=yes allocates one at each start,
#      and systemd makes /var/lib/hayate (StateDirectory=) for it.
#
# It packages the binary `make build` made (`make deb` runs that first, so
# it is the default-features build even after `make build-mysql`).
# Knobs: TARGET_DIR, DEB_MAINTAINER (the Maintainer field), MAKE.
set -euo pipefail
cd "$(dirname "$0")/../.."
umask 022
die() { echo "deb: $*" >&2; exit 1; }

target=${TARGET_DIR:-target}
maintainer=${DEB_MAINTAINER:-hayate maintainers <maintainers@users.noreply.r-seed-b08d2acf.example>}
# The [package] table's version; a semver pre-release (1.0.0-rc.1) becomes
# Debian's 1.0.0~rc.1, which also sorts before 1.0.0.
version=$(awk -F'"' '/^\[/ { pkg = ($0 == "[package]") }
    pkg && /^version *=/ { print $2; exit }' Cargo.toml)
[ -n "$version" ] || die "no version in Cargo.toml's [package]"
version=${version//-/\~}
arch=$(dpkg --print-architecture)
[ -x "$target/release/hayate" ] || die "$target/release/hayate missing (run make deb)"

# dpkg-shlibdeps wants to run beside debian/control with the package's
# files in debian/PACKAGE/, so the staging tree is laid out that way.
work=$target/debian/staging
rm -rf "$work"
mkdir -p "$work/debian/hayate/DEBIAN"
root=$(cd "$work/debian/hayate" && pwd)
deb=$target/debian/hayate_${version}_${arch}.deb

"${MAKE:-make}" --no-print-directory install DESTDIR="$root" PREFIX=/usr \
    SYSTEMD_UNIT_DIR=/usr/lib/systemd/system TARGET_DIR="$target" >/dev/null
[ ! -e "$root/etc/hayate/tracker.conf.new" ] || die "staging tree was not empty"
strip --remove-section=.comment --remove-section=.note --strip-unneeded \
    "$root/usr/bin/hayate"

if command -v dpkg-shlibdeps >/dev/null; then
    printf 'Source: hayate\n\nPackage: hayate\nArchitecture: any\n' > "$work/debian/control"
    depends=$(cd "$work" && dpkg-shlibdeps -O debian/hayate/usr/bin/hayate |
        sed -n 's/^shlibs:Depends=//p')
    [ -n "$depends" ] || die "dpkg-shlibdeps found no dependencies"
else
    # dpkg-dev is not installed: the binary's NEEDED libraries (libc.so.6,
    # libm.so.6, libgcc_s.so.1) by package, without minimum versions.
    echo "deb: dpkg-shlibdeps missing (apt-get install dpkg-dev): Depends without versions" >&2
    depends="libc6, libgcc-s1"
fi

cat > "$root/DEBIAN/control" <<EOF
Package: hayate
Version: $version
Architecture: $arch
Maintainer: $maintainer
Installed-Size: $(du -sk --exclude=DEBIAN "$root" | cut -f1)
Depends: $depends
Section: net
Priority: optional
Description: small synchronous BitTorrent tracker (HTTP and UDP)
 hayate tracks swarms over HTTP and UDP (BEP 15), IPv4 and IPv6, as a
 public tracker or as a Gazelle-style private one (passkeys, credit kept
 in SQLite).
 .
 It runs as hayate.service under a throwaway user (DynamicUser=yes) with
 its state in /var/lib/hayate. The service is not enabled or started on
 install: edit /etc/hayate/tracker.conf, then
 systemctl enable --now hayate.
EOF
echo /etc/hayate/tracker.conf > "$root/DEBIAN/conffiles"
# Conffiles are left out, as dh_md5sums does: dpkg records their own sums.
(cd "$root" && find usr -type f -print0 | LC_ALL=C sort -z | xargs -0 md5sum) \
    > "$root/DEBIAN/md5sums"
for script in postinst prerm postrm; do
    install -m 0755 "contrib/deb/$script" "$root/DEBIAN/$script"
done
chmod 0644 "$root/DEBIAN/control" "$root/DEBIAN/conffiles" "$root/DEBIAN/md5sums"

dpkg-deb --root-owner-group -Zxz --build "$root" "$deb"
