#!/usr/bin/env bash
# Builds the test image every runtime / end-to-end test uses: an OCI image whose rootfs is
# Debian's static busybox with a symlink for every applet it lists (at the path busybox itself
# would install it, as `busybox --install -s` does), /etc/passwd and /etc/group with root and
# nobody (65534), and /tmp (1777). Default config: Cmd ["sh"], PATH set.
#
#   scripts/build-test-image.sh <out.tar> [name:tag]     (default name: rkube-test/busybox:latest)
#
# Writes an OCI archive (what `skopeo copy ... oci-archive:` produces); the archive's
# org.opencontainers.image.ref.name is <name:tag>. No network, a few seconds; the output is
# replaced atomically, so running it again (or concurrently) is harmless.
# Needs: busybox-static, umoci, skopeo (scripts/deps.sh installs them).
set -euo pipefail

if [ $# -lt 1 ] || [ $# -gt 2 ]; then
  echo "usage: $0 <out.tar> [name:tag]" >&2
  exit 2
fi
out=$1
name=${2:-rkube-test/busybox:latest}
busybox=/bin/busybox

for tool in umoci skopeo; do
  command -v "$tool" >/dev/null || { echo "$0: $tool is not installed (scripts/deps.sh)" >&2; exit 1; }
done
[ -x "$busybox" ] || { echo "$0: $busybox missing: install busybox-static (scripts/deps.sh)" >&2; exit 1; }
# A dynamically linked busybox would need its libc in the image.
if ! "$busybox" --list-full >/dev/null 2>&1; then
  echo "$0: $busybox does not support --list-full" >&2
  exit 1
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/rkube-test-image.XXXXXX")
trap 'rm -rf "$work"' EXIT

layout=$work/layout
bundle=$work/bundle
umoci init --layout "$layout"
umoci new --image "$layout:build"
# Root can unpack with real ownership; otherwise umoci needs --rootless.
rootless=()
[ "$(id -u)" -eq 0 ] || rootless=(--rootless)
umoci unpack "${rootless[@]}" --image "$layout:build" "$bundle" >/dev/null

rootfs=$bundle/rootfs
install -d -m 0755 "$rootfs"/{bin,sbin,usr/bin,usr/sbin,etc,root,home,proc,sys,dev,run,var}
install -d -m 1777 "$rootfs/tmp"
install -m 0755 "$busybox" "$rootfs/bin/busybox"
while read -r applet; do
  [ "$applet" = bin/busybox ] && continue
  mkdir -p "$rootfs/$(dirname "$applet")"
  ln -sf /bin/busybox "$rootfs/$applet"
done < <("$busybox" --list-full)

cat >"$rootfs/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/home:/bin/false
EOF
cat >"$rootfs/etc/group" <<'EOF'
root:x:0:
nogroup:x:65534:
EOF
chmod 0644 "$rootfs/etc/passwd" "$rootfs/etc/group"
# Pods get hostname/hosts/resolv.conf bind-mounted over these; they must exist as files.
: >"$rootfs/etc/hostname"
: >"$rootfs/etc/hosts"
: >"$rootfs/etc/resolv.conf"
chmod 0700 "$rootfs/root"

umoci repack --history.comment "rkube test busybox" --image "$layout:build" "$bundle" >/dev/null
umoci config --no-history --image "$layout:build" --tag latest \
  --os linux --architecture amd64 \
  --config.cmd sh \
  --config.env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  --config.workingdir / \
  --config.label org.opencontainers.image.title=rkube-test-busybox

mkdir -p "$(dirname "$out")"
tmp_out=$(mktemp "$out.tmp.XXXXXX")
rm -f "$tmp_out"  # skopeo refuses to write into an existing file
skopeo copy --quiet "oci:$layout:latest" "oci-archive:$tmp_out:$name"
mv -f "$tmp_out" "$out"
