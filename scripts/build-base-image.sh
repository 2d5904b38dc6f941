#!/usr/bin/env bash
# Assembles flightdeck's base images from this machine's own binaries with `docker import`, for
# hosts that cannot reach an image registry (no `docker pull node:20`).
#
#   scripts/build-base-image.sh [node|redis|nginx|all]   (default: all)
#
#   node   flightdeck/node-base:20    Node.js + npm (as installed here), their shared libraries,
#                                     busybox as /bin/sh and coreutils, tini as /sbin/tini, CA
#                                     certificates, and a non-root user `node` (uid 1000) like the
#                                     official node images have. The Dockerfile's default BASE_IMAGE.
#   redis  flightdeck/redis-local:7   redis-server and its libraries, user `redis` (uid 999) owning
#                                     /data, for the stack's Redis on a host with no registry.
#   nginx  flightdeck/nginx-local:1   nginx (as installed here) with its dynamic modules (Lua and
#                                     NDK when present, plus the Lua libraries Debian puts in
#                                     /usr/share/lua/5.1: lua-resty-core, and when installed
#                                     lua-nginx-redis and lua-nginx-dns, at the same paths, so
#                                     require("nginx.redis") and require("nginx.dns.resolver")
#                                     work), their libraries, mime.types, busybox, and a minimal
#                                     nginx.conf that includes
#                                     /etc/nginx/flightdeck/*.conf (flightdeck's upstream file and
#                                     your server blocks, from a shared mount) and
#                                     /etc/nginx/conf.d/*.conf. For the stack's nginx service.
#
# Idempotent: each image carries a label with a hash of its recipe (this script, the binaries'
# versions); a build is skipped when the image exists with the same hash. FORCE=1 rebuilds.
set -euo pipefail

NODE_IMAGE=${NODE_BASE_IMAGE:-flightdeck/node-base:20}
REDIS_IMAGE=${REDIS_LOCAL_IMAGE:-flightdeck/redis-local:7}
NGINX_IMAGE=${NGINX_LOCAL_IMAGE:-flightdeck/nginx-local:1}
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

# nginx's main config in the image: everything site-specific comes from the included directories.
nginx_conf() {
  local m
  for m in "$@"; do printf 'load_module %s;\n' "$m"; done
  cat <<'EOF'
user nginx;
worker_processes auto;
pid /run/nginx.pid;
error_log stderr warn;
# Each reload leaves old workers serving their open connections; cap how long they may stay.
worker_shutdown_timeout 30s;
events { worker_connections 1024; }
http {
  include /etc/nginx/mime.types;
  default_type application/octet-stream;
  access_log off;
  sendfile on;
  keepalive_timeout 65;
  # flightdeck's managed upstream file, shared with the workers through a mount, and server blocks.
  include /etc/nginx/flightdeck/*.conf;
  include /etc/nginx/conf.d/*.conf;
}
EOF
}

build_nginx() {
  local nginx recipe root mods=() m d
  nginx=$(readlink -f "$(command -v nginx || echo /usr/sbin/nginx)")
  [ -x "$nginx" ] || die "nginx is not installed"
  for m in /usr/lib/nginx/modules/ndk_http_module.so /usr/lib/nginx/modules/ngx_http_lua_module.so; do
    [ -f "$m" ] && mods+=("$m")
  done
  recipe=$(recipe_of "$("$nginx" -V 2>&1)" "$(sha256sum "$nginx" "${mods[@]}" /etc/nginx/mime.types)" \
    "$([ -d /usr/share/lua/5.1 ] && find /usr/share/lua/5.1 -type f | sort | xargs sha256sum)" \
    "busybox $("$(busybox_bin)" | head -1)")
  if up_to_date "$NGINX_IMAGE" "$recipe"; then log "$NGINX_IMAGE is up to date ($recipe)"; return; fi

  log "assembling $NGINX_IMAGE from $nginx (${#mods[@]} dynamic modules)"
  root=$(mktemp -d)
  chmod 755 "$root"
  trap 'rm -rf "$root"' RETURN
  put "$nginx" "$root" /usr/sbin/nginx
  put_libs "$nginx" "$root"
  for m in "${mods[@]}"; do put "$m" "$root"; put_libs "$m" "$root"; done
  # lua-resty-core: the Lua module needs it at start, and flightdeck's balancer uses ngx.balancer.
  # lua-nginx-redis and lua-nginx-dns (nginx/redis.lua, nginx/dns/resolver.lua): the Lua edge's
  # Redis client and its resolver for Swarm's tasks.<service> names. All on LuaJIT's default path.
  if [ "${#mods[@]}" -gt 0 ] && [ -d /usr/share/lua/5.1 ]; then
    mkdir -p "$root/usr/share/lua"
    cp -a /usr/share/lua/5.1 "$root/usr/share/lua/5.1"
    local lib missing=()
    for lib in resty/core.lua nginx/redis.lua nginx/dns/resolver.lua; do
      [ -f "/usr/share/lua/5.1/$lib" ] || missing+=("$lib")
    done
    [ "${#missing[@]}" -eq 0 ] ||
      log "without ${missing[*]} (apt-get install lua-resty-core lua-nginx-redis lua-nginx-dns)"
  fi
  put /etc/nginx/mime.types "$root"
  nginx_conf "${mods[@]}" >"$root/etc/nginx/nginx.conf"
  for d in /etc/nginx/flightdeck /etc/nginx/conf.d /var/log/nginx /run \
    /var/lib/nginx/body /var/lib/nginx/proxy /var/lib/nginx/fastcgi /var/lib/nginx/uwsgi /var/lib/nginx/scgi; do
    mkdir -p "$root$d"
  done
  put_busybox "$root"
  put_accounts "$root" nginx 101 /var/lib/nginx
  # The master runs as root (it binds, reads the config and is signalled); its workers run as `nginx`.
  # SIGQUIT stops nginx gracefully; `docker import` cannot set STOPSIGNAL, so the stack sets stop_signal.
  import_root "$root" "$NGINX_IMAGE" \
    --change 'ENV PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin' \
    --change "LABEL flightdeck.base.recipe=$recipe" \
    --change 'CMD ["nginx", "-g", "daemon off;"]'
  log "built $NGINX_IMAGE ($(docker image inspect -f '{{.Size}}' "$NGINX_IMAGE" | awk '{printf "%.0f MB", $1/1e6}'))"
}

docker info >/dev/null 2>&1 || die "docker is not answering (scripts/stack.sh up starts it)"
case "${1:-all}" in
  node) build_node ;;
  redis) build_redis ;;
  nginx) build_nginx ;;
  all) build_node; build_redis; build_nginx ;;
  *) echo "usage: $0 [node|redis|nginx|all]" >&2; exit 2 ;;
esac
