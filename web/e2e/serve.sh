#!/usr/bin/env bash
# The server the end-to-end tests drive: a fresh home with a generated business, the
# real `strata serve` of this checkout on 127.0.0.1:8765, serving the built app.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
export STRATA_HOME="$root/web/test-results/home"  # ignored by git; fresh each run
rm -rf "$STRATA_HOME"
export STRATA_OWNER_EMAIL=owner@e2e.test STRATA_OWNER_PASSWORD="e2e owner password"
export STRATA_COOKIE_SECURE=false
unset STRATA_DATABASE_URL STRATA_WAREHOUSE_URL STRATA_REDIS_URL
"$root/.venv/bin/strata" generate --customers 2000 -w shop >/dev/null
"$root/.venv/bin/strata" rfm -w shop >/dev/null
exec "$root/.venv/bin/strata" serve --host 127.0.0.1 --port 8765 --log-level warning
