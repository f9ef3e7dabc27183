#!/usr/bin/env bash
# ElastAlert2 for bench:detect (not the test suite): a virtualenv in the Gatewatch cache with
# elastalert2 from PyPI (and pytz, which some of its releases import without declaring).
set -euo pipefail
cache="${GATEWATCH_CACHE_DIR:-$( [ "$(id -u)" = 0 ] && echo /var/tmp/gatewatch-cache || echo "$HOME/.cache/gatewatch")}"
venv="$cache/elastalert2"
if [ ! -x "$venv/bin/python" ]; then python3 -m venv "$venv"; fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check elastalert2 pytz
"$venv/bin/python" -c 'import elastalert.elastalert' && echo "ElastAlert2 ready: $venv/bin/python"
