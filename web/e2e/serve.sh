#!/usr/bin/env bash
# The server the end-to-end tests drive: a fresh home with the demo business (RFM,
# example segments, clusters, predictions), the real `strata serve` of this checkout
# on 127.0.0.1:PORT, serving the app built into web/DIST.
set -euo pipefail
port="${1:-8765}"
dist="${2:-dist}"
root="$(cd "$(dirname "$0")/../.." && pwd)"
export STRATA_HOME="$root/web/test-results/home-$port"  # ignored by git; fresh each run
rm -rf "$STRATA_HOME"
export STRATA_OWNER_EMAIL=owner@e2e.test STRATA_OWNER_PASSWORD="e2e owner password"
export STRATA_COOKIE_SECURE=false
unset STRATA_DATABASE_URL STRATA_WAREHOUSE_URL STRATA_REDIS_URL
cd "$root"
.venv/bin/strata demo --customers 2000 -w shop --no-serve >/dev/null
exec .venv/bin/strata serve --host 127.0.0.1 --port "$port" --log-level warning \
  --web-dist "$root/web/$dist"
