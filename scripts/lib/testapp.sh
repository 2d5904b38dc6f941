# The test app's images, shared by scripts/stack.sh (the host's engine) and scripts/multinode.sh (the
# multi-node bed's node 1, then its registry), so the two can never drift. Source it; it defines:
#   TESTAPP_TAGS                    the tags every engine gets
#   testapp_recipe                  a hash of this file and busybox: the label an up-to-date image has
#   testapp_current REF DOCKER...   true if DOCKER's image REF carries that recipe
#   testapp_import TAG REF DOCKER…  builds TAG's root filesystem and `docker import`s it as REF
# DOCKER… is the docker command to use, e.g. `docker` or `docker -H unix:///run/fdmn1.sock`.
#
# busybox httpd serving /health, /version, /colour, an app endpoint and Prometheus metrics (CGI).
#   1.0.0 1.1.0 1.2.0 2.0.0  healthy
#   broken                   exits at once (never converges)
#   unhealthy                runs, but /health answers 404
#   errors                   healthy, but /cgi-bin/app answers 500 (for metric gates)

TESTAPP_TAGS=(1.0.0 1.1.0 1.2.0 2.0.0 broken unhealthy errors)

testapp_busybox() { if [ -x /bin/busybox ]; then echo /bin/busybox; else echo /usr/bin/busybox; fi; }

TESTAPP_LIB=$(readlink -f "${BASH_SOURCE[0]}")
# A hash, not a hand-bumped number: any change to this recipe (or busybox) rebuilds every copy.
# Computed when first used: busybox may not be installed yet when this file is sourced.
testapp_recipe() { cat "$TESTAPP_LIB" "$(testapp_busybox)" | sha256sum | cut -c1-16; }

testapp_current() {
  local ref=$1; shift
  [ "$("$@" image inspect -f '{{index .Config.Labels "flightdeck.testapp.recipe"}}' "$ref" 2>/dev/null)" = "$(testapp_recipe)" ]
}

# Writes TAG's root filesystem into DIR.
testapp_rootfs() {
  local tag=$1 dir=$2 applet code=200
  mkdir -p "$dir/bin" "$dir/www/cgi-bin" "$dir/tmp" "$dir/var"
  cp "$(testapp_busybox)" "$dir/bin/busybox"
  for applet in sh cat mkdir rmdir; do ln -s busybox "$dir/bin/$applet"; done
  printf '%s\n' "$tag" >"$dir/www/version"
  [ "$tag" = unhealthy ] || printf 'ok %s\n' "$tag" >"$dir/www/health"
  printf 'testapp %s\n' "$tag" >"$dir/www/index.html"
  [ "$tag" = errors ] && code=500
  # /cgi-bin/app: the "application"; counts requests by status code for /cgi-bin/metrics.
  cat >"$dir/www/cgi-bin/app" <<APP
#!/bin/sh
f=/var/requests_$code
# mkdir is atomic: a tiny lock so concurrent requests do not lose counts.
until mkdir /var/lk 2>/dev/null; do :; done
n=\$(cat \$f 2>/dev/null || echo 0); echo \$((n+1)) > \$f
rmdir /var/lk
echo "Status: $code"
echo "Content-Type: text/plain"
echo ""
echo "testapp $tag \$(cat /www/colour)"
APP
  cat >"$dir/www/cgi-bin/metrics" <<'MET'
#!/bin/sh
echo "Content-Type: text/plain; version=0.0.4"
echo ""
echo "# TYPE testapp_requests_total counter"
for code in 200 500; do
  echo "testapp_requests_total{code=\"$code\"} $(cat /var/requests_$code 2>/dev/null || echo 0)"
done
MET
  chmod +x "$dir/www/cgi-bin/app" "$dir/www/cgi-bin/metrics"
  if [ "$tag" = broken ]; then
    printf '#!/bin/sh\necho "testapp broken: refusing to start" >&2\nexit 1\n' >"$dir/bin/start"
  else
    # PORT from the service env; the colour (if given) is served at /colour.
    printf '#!/bin/sh\necho "${COLOUR:-none}" > /www/colour\nexec /bin/busybox httpd -f -p "${PORT:-8080}" -h /www\n' >"$dir/bin/start"
  fi
  chmod +x "$dir/bin/start"
}

testapp_import() {
  local tag=$1 ref=$2 dir; shift 2
  dir=$(mktemp -d)
  testapp_rootfs "$tag" "$dir"
  tar -C "$dir" -c . | "$@" import --change 'CMD ["/bin/start"]' \
    --change "LABEL flightdeck.testapp.recipe=$(testapp_recipe)" - "$ref" >/dev/null
  rm -rf "$dir"
}
