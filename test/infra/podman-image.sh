#!/bin/sh
# Builds a podman image for the container tests from a local rootfs (no registry):
# busybox-static; "full" adds the host's node binary and its shared libraries and a
# conduit-block-manager on its PATH that runs this checkout's built endpoint package
# (the test bind-mounts the checkout read-only at the same path); "no-conduit" has a
# stand-in `node` but no conduit-block-manager; "no-node" has neither. Every image has
# /conduit-marker, a file only it has (its content: the image name).
#   test/infra/podman-image.sh IMAGE full|no-conduit|no-node
set -eu
image=$1
variant=$2
repo=$(cd "$(dirname "$0")/../.." && pwd)
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/bin" "$root/usr/bin" "$root/usr/local/bin" "$root/etc" "$root/tmp" "$root/root"
chmod 1777 "$root/tmp"
cp "$(command -v busybox)" "$root/bin/busybox"
for tool in sh cat echo env ls sleep id mkdir rm; do ln -s busybox "$root/bin/$tool"; done
printf 'root:x:0:0:root:/root:/bin/sh\n' >"$root/etc/passwd"
printf 'root:x:0:\n' >"$root/etc/group"
printf '%s\n' "$image" >"$root/conduit-marker"
if [ "$variant" = no-conduit ]; then
  printf '#!/bin/sh\necho "a stand-in node"\n' >"$root/usr/bin/node"
  chmod +x "$root/usr/bin/node"
fi
if [ "$variant" = full ]; then
  node=$(readlink -f "$(command -v node)")
  cp "$node" "$root/usr/bin/node"
  # The dynamic loader and every library node links, at the paths it looks for them.
  for lib in $(ldd "$node" | grep -o '/[^ ]*'); do
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
  done
fi
if [ "$variant" = full ]; then
  printf '#!/bin/sh\nexec node %s/packages/endpoint/bin/conduit-block-manager.js "$@"\n' "$repo" >"$root/usr/local/bin/conduit-block-manager"
  chmod +x "$root/usr/local/bin/conduit-block-manager"
fi
tar -C "$root" -cf "$root.tar" .
podman import --quiet --change 'ENV PATH=/usr/local/bin:/usr/bin:/bin' "$root.tar" "$image" >/dev/null
rm -f "$root.tar"
