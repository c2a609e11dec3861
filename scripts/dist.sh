#!/usr/bin/env bash
# The release artifact for a node: one static kantup executable, stripped, in
#   target/dist/kantup-<version>-linux-amd64.tar.gz
# with its checksum beside it (target/dist/kantup-<version>-linux-amd64.tar.gz.sha256, in
# sha256sum format: `sha256sum -c` checks it) and its debug info kept apart
# (target/dist/kantup-<version>-linux-amd64.debug, for profilers and symbolizing crashes; not
# shipped; the binary names it in a .gnu_debuglink section).
#
# Static: musl when the toolchain has the x86_64-unknown-linux-musl target, else glibc linked
# statically (-C target-feature=+crt-static on x86_64-unknown-linux-gnu). Either way the binary
# needs no shared library on the node. Host names resolve through hickory-dns (/etc/hosts,
# /etc/resolv.conf), not the C library's NSS; CA certificates are read from the usual paths.
#
# One release build, in the workspace's target directory (CARGO_TARGET_DIR is honoured).
set -euo pipefail
cd "$(dirname "$0")/.."

if rustup target list --installed 2>/dev/null | grep -qx x86_64-unknown-linux-musl; then
  target=x86_64-unknown-linux-musl
  rustflags=""
else
  target=x86_64-unknown-linux-gnu
  rustflags="-C target-feature=+crt-static"
fi
# getrandom 0.3/0.4 find glibc's getrandom() with dlsym, which a static binary cannot: they
# would fall back to /dev/urandom (missing in a bare root). The raw syscall needs nothing.
rustflags="$rustflags --cfg getrandom_backend=\"linux_raw\""
# kantup's version is the workspace's ([workspace.package] version).
version="$(sed -n '/^\[workspace.package\]/,/^\[/s/^version = "\(.*\)"/\1/p' Cargo.toml)"
target_dir="${CARGO_TARGET_DIR:-target}"
dist="$target_dir/dist"
name="kantup-$version-linux-amd64"

start=$(date +%s)
# --target keeps RUSTFLAGS off build scripts and proc macros (which cannot be static).
RUSTFLAGS="${RUSTFLAGS:-} $rustflags" cargo build --locked --release --target "$target" -p kantup --bin kantup
built="$target_dir/$target/release/kantup"

rm -rf "$dist/$name"
mkdir -p "$dist/$name"
# The debug info apart, the binary stripped and pointing at it.
objcopy --only-keep-debug "$built" "$dist/$name.debug"
objcopy --strip-all --add-gnu-debuglink="$dist/$name.debug" "$built" "$dist/$name/kantup"
chmod 0755 "$dist/$name/kantup"

# Static or nothing: no program interpreter, no needed shared library.
if readelf -l "$dist/$name/kantup" | grep -q 'Requesting program interpreter' \
  || readelf -d "$dist/$name/kantup" | grep -q '(NEEDED)'; then
  echo "dist: $dist/$name/kantup is not static:" >&2
  readelf -d "$dist/$name/kantup" | grep NEEDED >&2 || true
  exit 1
fi
size=$(stat -c %s "$dist/$name/kantup")
limit=$((30 * 1024 * 1024))
if [ "$size" -ge "$limit" ]; then
  echo "dist: $dist/$name/kantup is $size bytes, over the 30 MiB limit" >&2
  exit 1
fi

# Reproducible tarball: fixed owner, mode and mtime (the commit's time).
mtime="$(git log -1 --format=%ct 2>/dev/null || echo 0)"
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$mtime" \
  -C "$dist/$name" -cf - kantup | gzip -n -9 >"$dist/$name.tar.gz"
(cd "$dist" && sha256sum "$name.tar.gz" >"$name.tar.gz.sha256")
rm -rf "${dist:?}/$name"

echo "dist: $dist/$name.tar.gz ($target, kantup $(numfmt --to=iec-i --suffix=B "$size"), built in $(( $(date +%s) - start ))s)"
echo "dist: $dist/$name.tar.gz.sha256"
echo "dist: $dist/$name.debug (debug info, not shipped)"
