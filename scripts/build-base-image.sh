#!/usr/bin/env bash
# Assembles flightdeck's base images from this machine's own binaries with `docker import`, for
# hosts that cannot reach an image registry (no `docker pull node:20`).
#
#   scripts/build-base-image.sh [node|redis|all]   (default: all)
#
#   node   flightdeck/node-base:20    Node.js + npm (as installed here), their shared libraries,
#                                     busybox as /bin/sh and coreutils, tini as /sbin/tini, CA
#                                     certificates, and a non-root user `node` (uid 1000) like the
#                                     official node images have. The Dockerfile's default BASE_IMAGE.
#   redis  flightdeck/redis-local:7   redis-server and its libraries, user `redis` (uid 999) owning
#                                     /data, for the stack's Redis on a host with no registry.
#
# Idempotent: each image carries a label with a hash of its recipe (this script, the binaries'
# versions); a build is skipped when the image exists with the same hash. FORCE=1 rebuilds.
set -euo pipefail

NODE_IMAGE=${NODE_BASE_IMAGE:-flightdeck/node-base:20}
REDIS_IMAGE=${REDIS_LOCAL_IMAGE:-flightdeck/redis-local:7}
SELF=$(readlink -f "$0")

log() { printf '[base-image] %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

# Copies a file (following links) to the same path under the root, creating directories.
put() {
  local src=$1 root=$2 dest=${3:-$1}
  mkdir -p "$root$(dirname "$dest")"
  cp -L "$src" "$root$dest"
}

# Copies every shared library a binary needs (and the dynamic loader) into the root.
put_libs() {
  local bin=$1 root=$2 lib
  for lib in $(ldd "$bin" | grep -oE '/[^ ]+\.so[^ ]*' | sort -u); do put "$lib" "$root"; done
}

busybox_bin() {
  for b in /bin/busybox /usr/bin/busybox; do [ -x "$b" ] && { echo "$b"; return; }; done
  die "busybox is missing: apt-get install busybox-static"
}

# busybox as /bin/sh and every applet it has (env, wget, id, ps, …), as links.
put_busybox() {
  local root=$1 bb applet
  bb=$(busybox_bin)
  file -L "$bb" 2>/dev/null | grep -q 'statically linked' || ldd "$bb" 2>&1 | grep -q 'not a dynamic' ||
    die "$bb is not statically linked: apt-get install busybox-static"
  put "$bb" "$root" /bin/busybox
  for applet in $("$bb" --list-full); do
    [ -e "$root/$applet" ] && continue
    mkdir -p "$root/$(dirname "$applet")"
    ln -s /bin/busybox "$root/$applet"
  done
}

put_accounts() {
  local root=$1 user=$2 uid=$3 home=$4
  mkdir -p "$root/etc" "$root/tmp" "$root/root" "$root$home"
  chmod 1777 "$root/tmp"
  cat >"$root/etc/passwd" <<EOF
root:x:0:0:root:/root:/bin/sh
$user:x:$uid:$uid::$home:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
EOF
  cat >"$root/etc/group" <<EOF
root:x:0:
$user:x:$uid:
nogroup:x:65534:
EOF
  printf 'passwd: files\ngroup: files\nhosts: files dns\n' >"$root/etc/nsswitch.conf"
  chown "$uid:$uid" "$root$home"
}

recipe_of() { { cat "$SELF"; printf '%s\n' "$@"; } | sha256sum | cut -c1-16; }

up_to_date() {
  local image=$1 recipe=$2
  [ "${FORCE:-0}" != 1 ] &&
    [ "$(docker image inspect -f '{{index .Config.Labels "flightdeck.base.recipe"}}' "$image" 2>/dev/null)" = "$recipe" ]
}

import_root() {
  local root=$1 image=$2; shift 2
  tar --numeric-owner -C "$root" -c . | docker import "$@" - "$image" >/dev/null
}

build_node() {
  local node npm_dir tini recipe root
  node=$(readlink -f "$(command -v node)") || die "node is not installed"
  npm_dir=$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")
  [ -f "$npm_dir/package.json" ] || die "cannot find npm's directory (looked at $npm_dir)"
  tini=$(command -v tini-static || true)
  [ -n "$tini" ] || die "tini-static is missing: apt-get install tini"
  recipe=$(recipe_of "node $("$node" --version)" "npm $(cd "$npm_dir" && "$node" -p 'require("./package.json").version')" \
    "tini $("$tini" --version)" "busybox $("$(busybox_bin)" | head -1)" "ca $(sha256sum /etc/ssl/certs/ca-certificates.crt)")
  if up_to_date "$NODE_IMAGE" "$recipe"; then log "$NODE_IMAGE is up to date ($recipe)"; return; fi

  log "assembling $NODE_IMAGE from $node ($("$node" --version)) and npm in $npm_dir"
  root=$(mktemp -d)
  chmod 755 "$root"
  trap 'rm -rf "$root"' RETURN
  put "$node" "$root" /usr/local/bin/node
  put_libs "$node" "$root"
  mkdir -p "$root/usr/local/lib/node_modules"
  cp -a "$npm_dir" "$root/usr/local/lib/node_modules/npm"
  ln -s ../lib/node_modules/npm/bin/npm-cli.js "$root/usr/local/bin/npm"
  ln -s ../lib/node_modules/npm/bin/npx-cli.js "$root/usr/local/bin/npx"
  put "$tini" "$root" /sbin/tini
  put_busybox "$root"
  put /etc/ssl/certs/ca-certificates.crt "$root"
  put_accounts "$root" node 1000 /home/node
  import_root "$root" "$NODE_IMAGE" \
    --change 'ENV PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin' \
    --change "ENV NODE_VERSION=$("$node" --version | tr -d v)" \
    --change "LABEL flightdeck.base.recipe=$recipe" \
    --change 'CMD ["node"]'
  log "built $NODE_IMAGE ($(docker image inspect -f '{{.Size}}' "$NODE_IMAGE" | awk '{printf "%.0f MB", $1/1e6}'))"
}

build_redis() {
  local redis recipe root
  redis=$(readlink -f "$(command -v redis-server)") || die "redis-server is not installed"
  recipe=$(recipe_of "$(redis-server --version)")
  if up_to_date "$REDIS_IMAGE" "$recipe"; then log "$REDIS_IMAGE is up to date ($recipe)"; return; fi

  log "assembling $REDIS_IMAGE from $redis"
  root=$(mktemp -d)
  chmod 755 "$root"
  trap 'rm -rf "$root"' RETURN
  put "$redis" "$root" /usr/local/bin/redis-server
  put_libs "$redis" "$root"
  put "$(readlink -f "$(command -v redis-cli)")" "$root" /usr/local/bin/redis-cli
  put_libs "$(readlink -f "$(command -v redis-cli)")" "$root"
  put_busybox "$root"
  put_accounts "$root" redis 999 /data
  import_root "$root" "$REDIS_IMAGE" \
    --change 'ENV PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin' \
    --change "LABEL flightdeck.base.recipe=$recipe" \
    --change 'USER redis' \
    --change 'WORKDIR /data' \
    --change 'CMD ["redis-server", "--dir", "/data", "--appendonly", "yes", "--maxmemory-policy", "noeviction"]'
  log "built $REDIS_IMAGE"
}

docker info >/dev/null 2>&1 || die "docker is not answering (scripts/stack.sh up starts it)"
case "${1:-all}" in
  node) build_node ;;
  redis) build_redis ;;
  all) build_node; build_redis ;;
  *) echo "usage: $0 [node|redis|all]" >&2; exit 2 ;;
esac
