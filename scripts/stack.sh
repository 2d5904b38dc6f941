#!/usr/bin/env bash
# The local stack flightdeck's tests, demo and CI run against: real Redis, Docker Swarm,
# nginx, Alertmanager and Prometheus, all on loopback. Idempotent: installs what is missing
# and starts what is not running; run it as often as you like.
#
#   scripts/stack.sh up      packages + dockerd/swarm + test images (what the tests need;
#                            tests start their own Redis, nginx, Alertmanager, Prometheus)
#   scripts/stack.sh demo    `up` plus long-running Redis, nginx, Alertmanager, Prometheus for the demo
#   scripts/stack.sh down    stop the demo servers (dockerd and swarm are left running)
#   scripts/stack.sh status  what is running
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
STATE=${FLIGHTDECK_STACK_DIR:-$ROOT/.stack}
# The engine this script starts and the tests use (test/helpers/swarm.ts): a DOCKER_HOST left pointing
# at the multi-node bed (unix:///run/fdmn1.sock, scripts/multinode.sh) must not redirect it.
export DOCKER_HOST=unix:///var/run/docker.sock
unset DOCKER_CONTEXT
mkdir -p "$STATE"

# Demo ports (tests use free ports of their own).
REDIS_PORT=${STACK_REDIS_PORT:-6390}
NGINX_PORT=${STACK_NGINX_PORT:-8088}
AM_PORT=${STACK_ALERTMANAGER_PORT:-9093}
PROM_PORT=${STACK_PROMETHEUS_PORT:-9090}

log() { printf '[stack] %s\n' "$*" >&2; }
have() { command -v "$1" >/dev/null 2>&1; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif have sudo; then sudo "$@"; else
    log "need root for: $*"; return 1; fi
}

packages() {
  local missing=()
  have redis-server || missing+=(redis-server)
  have nginx || [ -x /usr/sbin/nginx ] || missing+=(nginx)
  have dockerd || missing+=(docker.io)
  have prometheus || missing+=(prometheus)
  have prometheus-alertmanager || missing+=(prometheus-alertmanager)
  [ -x /bin/busybox ] || [ -x /usr/bin/busybox ] || missing+=(busybox-static)
  have wrk || missing+=(wrk)
  # nginx.driver: lua (and the traffic benchmark) need nginx's Lua module.
  [ -f /usr/lib/nginx/modules/ngx_http_lua_module.so ] || missing+=(libnginx-mod-http-lua)
  # The Lua edge's Redis client and DNS resolver (nginx-local:1 carries them; see build-base-image.sh).
  [ -f /usr/share/lua/5.1/nginx/redis.lua ] || missing+=(lua-nginx-redis)
  [ -f /usr/share/lua/5.1/nginx/dns/resolver.lua ] || missing+=(lua-nginx-dns)
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing: ${missing[*]}"
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
  # Debian's packages start their own daemons on the default ports; we want only ours.
  for svc in nginx redis-server prometheus prometheus-alertmanager; do
    if have systemctl && systemctl is-active --quiet "$svc" 2>/dev/null; then as_root systemctl stop "$svc" || true; fi
  done
}

docker_up() {
  if ! docker info >/dev/null 2>&1; then
    log "starting dockerd (vfs)"
    # PREFER_OFFLINE_IMAGE: Swarm must not try to pull (no registry is reachable here).
    DOCKER_SERVICE_PREFER_OFFLINE_IMAGE=1 setsid nohup dockerd --storage-driver=vfs \
      >"$STATE/dockerd.log" 2>&1 < /dev/null &
    for _ in $(seq 1 120); do
      docker info >/dev/null 2>&1 && break
      sleep 0.5
    done
    docker info >/dev/null 2>&1 || { log "dockerd did not start; see $STATE/dockerd.log"; tail -20 "$STATE/dockerd.log" >&2; return 1; }
  fi
  if [ "$(docker info --format '{{.Swarm.LocalNodeState}}')" != "active" ]; then
    log "initialising single-node swarm"
    docker swarm init --advertise-addr 127.0.0.1 >/dev/null
  fi
}

# Test images (the recipe is shared with the multi-node bed, scripts/multinode.sh): one image per tag,
# built with `docker import` because no registry is reachable from this engine.
# shellcheck source=lib/testapp.sh
source "$ROOT/scripts/lib/testapp.sh"
images() {
  local tag
  for tag in "${TESTAPP_TAGS[@]}"; do
    testapp_current "flightdeck/testapp:$tag" docker && continue
    log "building flightdeck/testapp:$tag"
    testapp_import "$tag" "flightdeck/testapp:$tag" docker
  done
}

redis_demo() {
  if redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping >/dev/null 2>&1; then return; fi
  mkdir -p "$STATE/redis"
  log "starting redis on 127.0.0.1:$REDIS_PORT (AOF on)"
  redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --dir "$STATE/redis" --appendonly yes \
    --maxmemory-policy noeviction --daemonize yes --pidfile "$STATE/redis/redis.pid" \
    --logfile "$STATE/redis/redis.log" --save ''
  for _ in $(seq 1 50); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && return; sleep 0.1; done
  log "redis did not start"; return 1
}

nginx_demo() {
  local p="$STATE/nginx"
  mkdir -p "$p/logs" "$p/temp" "$p/conf.d"
  [ -f "$p/conf.d/flightdeck-upstreams.conf" ] || : >"$p/conf.d/flightdeck-upstreams.conf"
  # The Lua module: the demo's nginx.driver is lua (weights change without a reload, no request lost).
  cat >"$p/nginx.conf" <<NGX
load_module /usr/lib/nginx/modules/ndk_http_module.so;
load_module /usr/lib/nginx/modules/ngx_http_lua_module.so;
worker_processes 2;
pid $p/nginx.pid;
error_log $p/logs/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $p/temp/body;
  proxy_temp_path $p/temp/proxy;
  fastcgi_temp_path $p/temp/fastcgi;
  uwsgi_temp_path $p/temp/uwsgi;
  scgi_temp_path $p/temp/scgi;
  include $p/conf.d/*.conf;
  server {
    listen 127.0.0.1:$NGINX_PORT;
    location = /flightdeck-nginx-health { return 200 "ok\n"; }
  }
}
NGX
  if [ -f "$p/nginx.pid" ] && kill -0 "$(cat "$p/nginx.pid")" 2>/dev/null; then
    # Already running (an earlier demo): take this config (e.g. the Lua module) without a restart.
    nginx -p "$p" -c nginx.conf -e "$p/logs/error.log" -s reload
    return
  fi
  log "starting nginx on 127.0.0.1:$NGINX_PORT"
  nginx -p "$p" -c nginx.conf -e "$p/logs/error.log"
}

# Waits until the process we just started answers /-/ready on its port. If it died (its port was
# taken meanwhile, say), stops with its log: the demo must not talk to whatever holds that port.
wait_ready() {
  local name=$1 port=$2 d=$3 pid
  pid=$(cat "$d/pid")
  for _ in $(seq 1 300); do
    if ! kill -0 "$pid" 2>/dev/null; then
      log "$name did not start on 127.0.0.1:$port:"; tail -5 "$d/log" >&2; exit 1
    fi
    curl -fs "http://127.0.0.1:$port/-/ready" >/dev/null 2>&1 && return
    sleep 0.1
  done
  log "$name is not ready on 127.0.0.1:$port after 30 s:"; tail -5 "$d/log" >&2; exit 1
}

alertmanager_demo() {
  if curl -fs "http://127.0.0.1:$AM_PORT/-/ready" >/dev/null 2>&1; then return; fi
  local d="$STATE/alertmanager"
  mkdir -p "$d/data"
  cat >"$d/alertmanager.yml" <<AM
route:
  receiver: flightdeck
  group_wait: 1s
  group_interval: 5s
  repeat_interval: 1h
receivers:
  - name: flightdeck
    webhook_configs:
      - url: http://127.0.0.1:${FLIGHTDECK_PORT:-3000}/alerts/alertmanager
        send_resolved: true
        http_config:
          authorization: { type: Bearer, credentials: ${ALERTMANAGER_WEBHOOK_TOKEN:-demo-webhook-token} }
AM
  log "starting alertmanager on 127.0.0.1:$AM_PORT"
  setsid nohup prometheus-alertmanager --config.file="$d/alertmanager.yml" --storage.path="$d/data" \
    --web.listen-address="127.0.0.1:$AM_PORT" --cluster.listen-address= >"$d/log" 2>&1 </dev/null &
  echo $! >"$d/pid"
  wait_ready alertmanager "$AM_PORT" "$d"
}

prometheus_demo() {
  if curl -fs "http://127.0.0.1:$PROM_PORT/-/ready" >/dev/null 2>&1; then return; fi
  local d="$STATE/prometheus"
  mkdir -p "$d/data"
  cat >"$d/prometheus.yml" <<PROM
global: { scrape_interval: 5s, evaluation_interval: 5s }
scrape_configs:
  - job_name: flightdeck
    static_configs: [ { targets: ['127.0.0.1:${FLIGHTDECK_PORT:-3000}'] } ]
  # The demo's per-colour request metrics (scripts/demo.ts serves them), judged by its compare gate.
  - job_name: demo-colours
    scrape_interval: 2s
    static_configs: [ { targets: ['127.0.0.1:${STACK_DEMO_METRICS_PORT:-8090}'] } ]
PROM
  log "starting prometheus on 127.0.0.1:$PROM_PORT"
  setsid nohup prometheus --config.file="$d/prometheus.yml" --storage.tsdb.path="$d/data" \
    --web.listen-address="127.0.0.1:$PROM_PORT" >"$d/log" 2>&1 </dev/null &
  echo $! >"$d/pid"
  wait_ready prometheus "$PROM_PORT" "$d"
}

down() {
  # The demo's Swarm services (tests remove their own).
  local demo_services
  demo_services=$(docker service ls -q --filter label=flightdeck.demo=1 2>/dev/null || true)
  [ -n "$demo_services" ] && docker service rm $demo_services >/dev/null 2>&1 || true
  redis-cli -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
  [ -f "$STATE/nginx/nginx.pid" ] && nginx -p "$STATE/nginx" -c nginx.conf -s stop 2>/dev/null || true
  for d in alertmanager prometheus; do
    [ -f "$STATE/$d/pid" ] && kill "$(cat "$STATE/$d/pid")" 2>/dev/null || true
    rm -f "$STATE/$d/pid"
  done
}

status() {
  printf 'docker:       %s\n' "$(docker info --format 'engine {{.ServerVersion}}, swarm {{.Swarm.LocalNodeState}}' 2>/dev/null || echo down)"
  printf 'redis:        %s\n' "$(redis-cli -p "$REDIS_PORT" ping 2>/dev/null || echo down)"
  printf 'nginx:        %s\n' "$(curl -fs "http://127.0.0.1:$NGINX_PORT/flightdeck-nginx-health" 2>/dev/null || echo down)"
  printf 'alertmanager: %s\n' "$(curl -fs "http://127.0.0.1:$AM_PORT/-/ready" 2>/dev/null | head -c 40 || echo down)"
  printf 'prometheus:   %s\n' "$(curl -fs "http://127.0.0.1:$PROM_PORT/-/ready" 2>/dev/null | head -c 40 || echo down)"
}

case "${1:-up}" in
  up) packages; docker_up; images ;;
  demo) packages; docker_up; images; redis_demo; nginx_demo; alertmanager_demo; prometheus_demo ;;
  down) down ;;
  status) status ;;
  *) echo "usage: $0 up|demo|down|status" >&2; exit 2 ;;
esac
