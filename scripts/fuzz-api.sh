#!/usr/bin/env bash
# The API fuzzer: a release build of fiber-link and fiber-link-apifuzz; the fuzzer starts the hub
# simulator and the API (`fiber-link hubsim`, `fiber-link serve`) on a fresh database of the
# Postgres server in DATABASE_URL (else a private cluster, see scripts/pg.sh), sends a million
# mutated requests (--requests N), prints its summary and exits 1 on any violation.
# Extra arguments go to the fuzzer (see `target/release/fiber-link-apifuzz --help`).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/pg.sh
. scripts/pg.sh
cargo build --release --locked -p fiber-link -p fiber-link-apifuzz
./target/release/fiber-link-apifuzz --bin target/release/fiber-link "$@"
