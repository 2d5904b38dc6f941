#!/usr/bin/env bash
# A real multi-node Docker Swarm on one machine, for tests (issue #14): N dockerd (default 3), each in
# its own network namespace on a bridge (default 10.77.0.0/24, host side .1, node i at .1i), node 1
# the manager, the others workers, and a Docker registry on the bridge (host side, port 5000) that
# every node pulls from. Nodes 2 and 3 carry the label flightdeck.edge=true (where the nginx edge goes).
# Idempotent: run it as often as you like; `up` on a running bed takes a few seconds.
#
#   scripts/multinode.sh up       packages, bridge, registry, nodes, Swarm, labels, images in the registry
#   scripts/multinode.sh down     stop and remove everything `up` made (the host's engine is untouched)
#   scripts/multinode.sh status   nodes and registry contents; exits 1 if the bed is not up
#   DOCKER_HOST=unix:///run/fdmn1.sock docker node ls
#
# Images in the registry, built on node 1 (tag $REG/NAME:TAG, push; skipped when the registry already
# has node 1's build of the same recipe):
#   flightdeck/testapp:{1.0.0,1.1.0,1.2.0,2.0.0,broken,unhealthy,errors}   scripts/lib/testapp.sh
#   flightdeck/nginx-local:1, flightdeck/node-base:20, flightdeck/redis-local:7   scripts/build-base-image.sh
#
# Facts it relies on (each one was a failure first):
# - `nsenter --net=...`, not `ip netns exec`: the latter remounts /sys and hides the cgroup mounts,
#   and dockerd then dies with "Devices cgroup isn't mounted".
# - The host dockerd sets FORWARD policy DROP and bridge-nf-call-iptables=1, so traffic between the
#   veths is dropped until the ACCEPT rule below is in.
# - Workers join with --advertise-addr of their own address, or the join times out.
# - No DOCKER_SERVICE_PREFER_OFFLINE_IMAGE here: with it set, Swarm never pulls, and tasks on a node
#   without the image are rejected "No such image". Images come from the registry instead:
#   build/import on node 1, tag 10.77.0.1:5000/NAME:TAG, push; services use that reference.
#   (The host's dockerd from scripts/stack.sh has it set; `env -u` keeps it out of the nodes' even
#   when the caller exported it.)
# - No IPVS: a service's virtual IP does not answer ("No route to host"); use --endpoint-mode dnsrr
#   (tasks.<service> resolves to every task) or host-mode published ports on the node addresses.
#   Overlay networks (vxlan) do work across the nodes.
# Found while making this script:
# - Each node's dockerd gets its own UTS namespace with hostname fdmnN: otherwise every node reports
#   the machine's hostname to Swarm, and `node ls`, placement by node.hostname and error messages
#   cannot tell them apart.
# - Daemons start with setsid, stdin from /dev/null and output to log files: a caller that waits for
#   the script's pipes to close (Node's spawn) would otherwise wait for the daemons to exit.
# - /run is not a tmpfs on every machine: after a reboot /run/netns/fdmnN can be a plain file, which
#   `ip -n` rejects; such a namespace is made again.
# - The registry's manifest digest is asked for with the schema-2 Accept header (what dockerd 20.10
#   pushes); without it registry 2.8 answers with a converted schema-1 digest that never matches.
# Beside the host's engine (scripts/stack.sh: /var/run/docker.sock, /var/lib/docker, single-node
# Swarm): the nodes have their own --data-root, --exec-root (so their own containerd, started by each
# dockerd), --pidfile, socket and network namespace (their own iptables, docker0, Swarm ports), and
# the bridge's only host-side rule is the one ACCEPT in FORWARD, which survives the host dockerd's
# restarts. Nothing here touches /var/run/docker.sock. If a system containerd listens on
# /run/containerd/containerd.sock, every dockerd uses it (dockerd 20.10 prefers it): the nodes then
# keep apart by containerd namespace, but `--network host` containers in the bed would run in the
# host's network namespace.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
N=${FDMN_NODES:-3}; NET=${FDMN_NET:-10.77.0}; BR=br-fdmn
REG="$NET.1:5000"; STATE=${FDMN_STATE:-/var/lib/fdmn}
EDGE_NODES=(2 3)

log() { printf '[multinode] %s\n' "$*" >&2; }
have() { command -v "$1" >/dev/null 2>&1; }
# The docker CLI against node i (never DOCKER_HOST or the default socket: that is the host's engine).
dk() { local i=$1; shift; docker -H "unix:///run/fdmn$i.sock" "$@"; }
node_id() { dk "$1" info --format '{{.Swarm.NodeID}}' 2>/dev/null; }

packages() {
  local missing=()
  have dockerd || missing+=(docker.io)
  have docker-registry || missing+=(docker-registry)
  [ -x /bin/busybox ] || [ -x /usr/bin/busybox ] || missing+=(busybox-static)
  have nginx || [ -x /usr/sbin/nginx ] || missing+=(nginx)
  # The edge image: nginx's Lua module, its Redis client and DNS resolver (build-base-image.sh nginx).
  [ -f /usr/lib/nginx/modules/ngx_http_lua_module.so ] || missing+=(libnginx-mod-http-lua)
  [ -f /usr/share/lua/5.1/nginx/redis.lua ] || missing+=(lua-nginx-redis)
  [ -f /usr/share/lua/5.1/nginx/dns/resolver.lua ] || missing+=(lua-nginx-dns)
  # node-base's init (build-base-image.sh node), and the tools this script runs.
  have tini-static || missing+=(tini)
  have nsenter || missing+=(util-linux)
  have ip || missing+=(iproute2)
  have iptables || missing+=(iptables)
  have curl || missing+=(curl)
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

network() {
  ip link show "$BR" >/dev/null 2>&1 || ip link add "$BR" type bridge
  ip -4 addr show dev "$BR" | grep -q "inet $NET.1/24" || ip addr add "$NET.1/24" dev "$BR"
  ip link set "$BR" up
  iptables -C FORWARD -i "$BR" -o "$BR" -j ACCEPT 2>/dev/null || iptables -I FORWARD -i "$BR" -o "$BR" -j ACCEPT
  local i ns
  for i in $(seq 1 "$N"); do
    ns=fdmn$i
    if ! ip -n "$ns" link show lo >/dev/null 2>&1; then
      ip netns del "$ns" 2>/dev/null || rm -f "/run/netns/$ns"
      ip netns add "$ns"
    fi
    if ! ip -n "$ns" -4 addr show dev eth0 2>/dev/null | grep -q "inet $NET.1$i/"; then
      ip link del "vfd$i" 2>/dev/null || true
      ip link add "vfd$i" type veth peer name eth0 netns "$ns"
      ip link set "vfd$i" master "$BR" up
      ip -n "$ns" addr add "$NET.1$i/24" dev eth0
      ip -n "$ns" link set eth0 up
      ip -n "$ns" link set lo up
      ip -n "$ns" route add default via "$NET.1"
    fi
  done
}

registry() {
  mkdir -p "$STATE/registry"
  curl -sf --max-time 2 "http://$REG/v2/" >/dev/null && return
  log "starting the registry on $REG"
  printf 'version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: %s/registry\nhttp:\n  addr: %s\n' \
    "$STATE" "$REG" >"$STATE/registry.yml"
  setsid nohup docker-registry serve "$STATE/registry.yml" >"$STATE/registry.log" 2>&1 </dev/null &
  echo $! >"$STATE/registry.pid"
  for _ in $(seq 50); do curl -sf --max-time 2 "http://$REG/v2/" >/dev/null && return; sleep 0.2; done
  log "the registry did not start; see $STATE/registry.log"; tail -20 "$STATE/registry.log" >&2; return 1
}

# True if /run/fdmn$i.pid names a live dockerd of node i (a stale file after a reboot names anything).
node_pid_alive() {
  local i=$1 pid
  pid=$(cat "/run/fdmn$i.pid" 2>/dev/null) || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "-H unix:///run/fdmn$i.sock"
}

nodes() {
  local i
  [ -S /run/containerd/containerd.sock ] &&
    log "warning: a system containerd is running; the nodes share it (see the comment at the top)"
  for i in $(seq 1 "$N"); do
    mkdir -p "$STATE/node$i" "/run/fdmn$i"
    dk "$i" info >/dev/null 2>&1 && continue
    node_pid_alive "$i" && continue # still starting
    rm -f "/run/fdmn$i.pid"
    log "starting node $i (fdmn$i, $NET.1$i)"
    setsid nohup env -u DOCKER_SERVICE_PREFER_OFFLINE_IMAGE -u DOCKER_HOST \
      nsenter --net="/run/netns/fdmn$i" unshare --uts sh -c 'hostname "$0" && exec "$@"' "fdmn$i" \
      dockerd --data-root "$STATE/node$i" --exec-root "/run/fdmn$i" --pidfile "/run/fdmn$i.pid" \
      -H "unix:///run/fdmn$i.sock" --storage-driver vfs --insecure-registry "$REG" \
      --containerd-namespace "fdmn$i" --containerd-plugins-namespace "fdmn$i-plugins" \
      >"$STATE/dockerd$i.log" 2>&1 </dev/null &
  done
  for i in $(seq 1 "$N"); do
    for _ in $(seq 120); do dk "$i" info >/dev/null 2>&1 && break; sleep 0.5; done
    dk "$i" info >/dev/null 2>&1 || {
      log "node $i's dockerd did not start; see $STATE/dockerd$i.log"; tail -20 "$STATE/dockerd$i.log" >&2; return 1
    }
  done
}

# Waits while node i's Swarm state is pending (a restarted node reconnecting), then prints it.
swarm_state() {
  local s
  for _ in $(seq 60); do
    s=$(dk "$1" info --format '{{.Swarm.LocalNodeState}}')
    [ "$s" != pending ] && break
    sleep 0.5
  done
  echo "$s"
}

swarm() {
  local i token ids id
  [ "$(swarm_state 1)" = active ] || { log "initialising the Swarm on node 1"; dk 1 swarm init --advertise-addr "$NET.11" >/dev/null; }
  token=$(dk 1 swarm join-token -q worker)
  ids=$(dk 1 node ls -q)
  for i in $(seq 2 "$N"); do
    # A worker still in an earlier Swarm (node 1's state was wiped) leaves it first.
    if [ "$(swarm_state "$i")" = active ] && ! grep -qx "$(node_id "$i")" <<<"$ids"; then
      log "node $i belongs to another Swarm: leaving it"
      dk "$i" swarm leave --force >/dev/null
    fi
    [ "$(swarm_state "$i")" = active ] ||
      { log "node $i joins"; dk "$i" swarm join --token "$token" --advertise-addr "$NET.1$i" "$NET.11:2377" >/dev/null; }
  done
  # Earlier incarnations of a node (its state wiped, joined again) stay listed as Down: drop them.
  ids=" $(for i in $(seq 1 "$N"); do node_id "$i"; done | tr '\n' ' ')"
  for id in $(dk 1 node ls -q); do
    [[ $ids == *" $id "* ]] || dk 1 node rm --force "$id" >/dev/null
  done
  for i in "${EDGE_NODES[@]}"; do
    [ "$i" -le "$N" ] || continue
    id=$(node_id "$i")
    [ "$(dk 1 node inspect -f '{{index .Spec.Labels "flightdeck.edge"}}' "$id")" = true ] ||
      dk 1 node update --label-add flightdeck.edge=true "$id" >/dev/null
  done
  for _ in $(seq 120); do
    [ "$(dk 1 node ls --format '{{.Status}}' | grep -c '^Ready$')" -ge "$N" ] && return
    sleep 0.5
  done
  log "not every node is Ready:"; dk 1 node ls >&2; return 1
}

# True if the registry holds REF's tag as the very image node 1 has under REF.
pushed() {
  local ref=$1 path repo tag digest
  path=${ref#"$REG"/}; repo=${path%:*}; tag=${path##*:}
  digest=$(curl -sf --max-time 5 -I -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
    "http://$REG/v2/$repo/manifests/$tag" | tr -d '\r' | awk 'tolower($1)=="docker-content-digest:"{print $2}')
  [ -n "$digest" ] &&
    dk 1 image inspect -f '{{range .RepoDigests}}{{println .}}{{end}}' "$ref" 2>/dev/null | grep -qx "$REG/$repo@$digest"
}

push() {
  pushed "$1" && return
  log "pushing $1"
  dk 1 push "$1" >/dev/null
}

images() {
  local tag ref name
  # shellcheck source=lib/testapp.sh
  source "$ROOT/scripts/lib/testapp.sh"
  for tag in "${TESTAPP_TAGS[@]}"; do
    ref=$REG/flightdeck/testapp:$tag
    testapp_current "$ref" dk 1 || { log "building $ref"; testapp_import "$tag" "$ref" dk 1; }
    push "$ref"
  done
  # build-base-image.sh skips an image node 1 already has with the same recipe.
  for name in nginx-local:1 node-base:20 redis-local:7; do
    DOCKER_HOST=unix:///run/fdmn1.sock bash "$ROOT/scripts/build-base-image.sh" "${name%%-*}"
    dk 1 tag "flightdeck/$name" "$REG/flightdeck/$name"
    push "$REG/flightdeck/$name"
  done
}

up() {
  [ "$(id -u)" -eq 0 ] || { log "needs root (network namespaces, iptables)"; exit 1; }
  packages
  network
  registry
  nodes
  echo "$N" >"$STATE/nodes"
  swarm
  images
  dk 1 node ls >&2
}

# Stops the process in PIDFILE if it is still the one whose command line has MATCH; waits up to 30 s.
stop_pid() {
  local file=$1 match=$2 pid
  pid=$(cat "$file" 2>/dev/null) || return 0
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$match" || return 0
  kill "$pid" 2>/dev/null || return 0
  for _ in $(seq 60); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.5; done
  log "pid $pid ($match) did not stop: SIGKILL"; kill -9 "$pid" 2>/dev/null || true
}

down() {
  local n i m
  n=$(cat "$STATE/nodes" 2>/dev/null || echo "$N")
  for i in $(seq "$n" -1 1); do dk "$i" swarm leave --force >/dev/null 2>&1 || true; done
  for i in $(seq 1 "$n"); do stop_pid "/run/fdmn$i.pid" "-H unix:///run/fdmn$i.sock" & done
  stop_pid "$STATE/registry.pid" "docker-registry serve" &
  wait
  for i in $(seq 1 "$n"); do
    # A dockerd that had to be killed leaves its containerd, and mounts (netns, shm) behind.
    stop_pid "/run/fdmn$i/containerd/containerd.pid" "/run/fdmn$i/containerd"
    ip netns del "fdmn$i" 2>/dev/null || rm -f "/run/netns/fdmn$i"
    ip link del "vfd$i" 2>/dev/null || true
  done
  for m in $(awk -v s="$STATE/" 'index($2, s) == 1 || $2 ~ "^/run/fdmn[0-9]+/" {print $2}' /proc/mounts | sort -r); do
    umount -l "$m" 2>/dev/null || true
  done
  ip link del "$BR" 2>/dev/null || true
  while iptables -D FORWARD -i "$BR" -o "$BR" -j ACCEPT 2>/dev/null; do :; done
  for i in $(seq 1 "$n"); do rm -rf "/run/fdmn$i" "/run/fdmn$i.sock" "/run/fdmn$i.pid"; done
  rm -rf "$STATE"
}

status() {
  local ok=0 repo tags
  if dk 1 node ls >/dev/null 2>&1; then
    printf 'nodes (manager unix:///run/fdmn1.sock):\n'
    dk 1 node ls -q | xargs docker -H unix:///run/fdmn1.sock node inspect \
      -f '  {{.Description.Hostname}}  {{.Status.Addr}}  {{.Status.State}}  {{.Spec.Role}}  {{.Spec.Availability}}  labels={{json .Spec.Labels}}' |
      sort
  else
    printf 'nodes: down (unix:///run/fdmn1.sock does not answer)\n'; ok=1
  fi
  if curl -sf --max-time 2 "http://$REG/v2/" >/dev/null; then
    printf 'registry %s:\n' "$REG"
    for repo in $(curl -sf "http://$REG/v2/_catalog" | grep -oE '"repositories":\[[^]]*\]' | grep -oE '"[^"]+"' | tr -d '"' | grep -v repositories); do
      tags=$(curl -sf "http://$REG/v2/$repo/tags/list" | grep -oE '"tags":\[[^]]*\]' | sed -e 's/"tags":\[//' -e 's/\]//' -e 's/"//g')
      printf '  %s: %s\n' "$repo" "$tags"
    done
  else
    printf 'registry %s: down\n' "$REG"; ok=1
  fi
  printf 'host engine (/var/run/docker.sock): %s\n' \
    "$(docker -H unix:///var/run/docker.sock info --format 'swarm {{.Swarm.LocalNodeState}}' 2>/dev/null || echo down)"
  return $ok
}

case "${1:-up}" in
  up) up ;;
  down) down ;;
  status) status ;;
  *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
