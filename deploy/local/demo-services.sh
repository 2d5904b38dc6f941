#!/usr/bin/env bash
# The demo service of deploy/local/flightdeck.yml: `api` in staging, a blue and a green Swarm
# service of the local test app (flightdeck/testapp, built by scripts/stack.sh), each publishing
# its port 8080 on the host (mode=host: no routing mesh here) at 18181 (blue) and 18182 (green).
#   bash deploy/local/demo-services.sh        create them (both on 1.0.0); skips existing ones
#   bash deploy/local/demo-services.sh rm     remove them
set -euo pipefail
colours=(blue:18181 green:18182)
if [ "${1:-}" = rm ]; then
  for c in "${colours[@]}"; do docker service rm "fdlocal-staging-api-${c%%:*}" 2>/dev/null || true; done
  exit 0
fi
for c in "${colours[@]}"; do
  name="fdlocal-staging-api-${c%%:*}"
  if docker service inspect "$name" >/dev/null 2>&1; then echo "$name exists"; continue; fi
  # stop-first: a host-mode port is one task's at a time. flightdeck changes the image on /deploy.
  docker service create --detach --quiet --name "$name" \
    --env PORT=8080 --env "COLOUR=${c%%:*}" \
    --publish "mode=host,target=8080,published=${c##*:}" --endpoint-mode dnsrr \
    --update-order stop-first --update-failure-action pause --rollback-order stop-first \
    --restart-condition any --no-resolve-image flightdeck/testapp:1.0.0 >/dev/null
  echo "$name created on 127.0.0.1:${c##*:}"
done
