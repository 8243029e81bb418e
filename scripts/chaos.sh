#!/usr/bin/env bash
# The chaos run: two API processes, two workers and the hub simulator over a private Postgres
# (crashed once mid-run), mixed traffic, SIGKILLs every few seconds and hub faults; then the books
# are checked against the simulator's records and by `fiber-link reconcile`. Exit 0 = clean.
#   scripts/chaos.sh --seconds 1800            # a 30-minute run (release build)
#   scripts/chaos.sh --seconds 60 --seed 42    # replay a schedule
# Needs the PostgreSQL server binaries (initdb, pg_ctl): installed with apt-get when missing and
# run as root, else the message says how.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/pg.sh
. scripts/pg.sh   # installs the server binaries if needed (the run starts its own cluster)
cargo build --release --locked -p fiber-link
exec ./target/release/fiber-link chaos "$@"
