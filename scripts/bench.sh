#!/usr/bin/env bash
# The benchmark: a release build of fiber-link driving its own API, simulator and worker
# processes against Postgres (DATABASE_URL, else a private cluster with normal durability).
# Extra arguments go to `fiber-link bench` (see `fiber-link bench --help`).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/pg.sh
. scripts/pg.sh
cargo build --release --locked -p fiber-link
./target/release/fiber-link bench "$@"
