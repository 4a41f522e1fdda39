#!/usr/bin/env bash
# The README's test command. Installs the servers the tests start (when
# missing), then runs `cargo test --workspace`; arguments go to cargo test.
#
# Tests that need the public corpora (Loghub, NAB) are ignored unless asked:
#   PROACTIVE_INSPECTOR_CORPORA=../shared/data scripts/test.sh -- --include-ignored
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-servers.sh
exec cargo test --workspace --locked "$@"
