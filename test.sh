#!/usr/bin/env bash
# The whole test suite: the documentation's own links (docs/check_links.py),
# unit and integration tests (cargo test), then the end-to-end suite against
# real Caddy, nginx and Traefik with a real OIDC provider (tests/e2e/run.sh
# installs what it needs on first use).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
python3 docs/check_links.py    # the docs' own links: a second, before the long part
cargo test --locked --workspace
tests/e2e/run.sh
