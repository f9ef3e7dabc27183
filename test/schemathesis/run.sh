#!/usr/bin/env bash
# Property-based fuzzing of the REST API from its own OpenAPI document (schemathesis).
#
#   test/schemathesis/run.sh                 # own Elasticsearch + Redis (or ELASTICSEARCH_URL / REDIS_URL)
#   ST_MAX_EXAMPLES=100 test/schemathesis/run.sh
#
# Starts the API on a free loopback port with an admin key, runs schemathesis with every
# check except positive_data_acceptance (valid requests for absent ids are 404 by design),
# and exits non-zero on any failure: a 5xx, a response that breaks its own schema, an
# undocumented status code or content type, an accepted invalid request, an endpoint that
# ignores authentication.
set -euo pipefail
cd "$(dirname "$0")/../.."

if command -v schemathesis >/dev/null 2>&1; then
  ST=(schemathesis)
elif python3 -c 'import schemathesis' >/dev/null 2>&1; then
  ST=(python3 -m schemathesis.cli)
else
  echo "schemathesis is not installed: pip install schemathesis" >&2
  exit 3
fi

NODE_BIN="${GATEWATCH_NODE:-node_modules/.bin/node}"
WORK="$(mktemp -d)"
SERVER_PID=""
cleanup() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

"$NODE_BIN" test/schemathesis/server.ts >"$WORK/server.json" 2>"$WORK/server.log" &
SERVER_PID=$!
for _ in $(seq 1 600); do
  [ -s "$WORK/server.json" ] && break
  if ! kill -0 "$SERVER_PID" 2>/dev/null; then
    echo "the API server did not start:" >&2
    cat "$WORK/server.log" >&2
    exit 1
  fi
  sleep 0.5
done
read -r URL TOKEN < <(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["url"], d["token"])' "$WORK/server.json")
curl -fsS -H "Authorization: Bearer $TOKEN" "$URL/openapi.json" >"$WORK/openapi.json"

set +e
"${ST[@]}" run "$WORK/openapi.json" \
  --url "$URL" \
  -H "Authorization: Bearer $TOKEN" \
  --checks all \
  --exclude-checks positive_data_acceptance \
  --max-examples "${ST_MAX_EXAMPLES:-20}" \
  --phases examples,coverage,fuzzing,stateful \
  --workers 1 \
  --seed "${ST_SEED:-1}" \
  --generation-database none \
  --request-timeout 30 \
  --suppress-health-check all \
  --no-color
STATUS=$?
set -e
if [ -s "$WORK/server.log" ]; then
  echo "--- server log (warnings and errors) ---"
  cat "$WORK/server.log"
fi
exit $STATUS
