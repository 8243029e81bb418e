# Sourced by the test and bench scripts: makes DATABASE_URL point at a Postgres server.
#
# - DATABASE_URL already set: used as it is (its user must be allowed to CREATE DATABASE).
# - Otherwise a private, throw-away cluster is started from the machine's PostgreSQL server
#   binaries (installed with apt-get when missing and we are root), on a free port bound to
#   127.0.0.1, and stopped when the calling script exits.
#
# FIBER_LINK_PG_FAST=1 turns fsync off in the private cluster (tests only; never for figures).
# FIBER_LINK_PG_OPTIONS adds server options (e.g. "-c shared_preload_libraries=pg_stat_statements").

fl_find_pg_bin() {
  local d best=""
  for d in /usr/lib/postgresql/*/bin; do
    [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && best="$d"
  done
  echo "$best"
}

fl_install_pg() {
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "error: the PostgreSQL server binaries (initdb, pg_ctl) are not installed." >&2
    echo "       Install them with: sudo apt-get install -y postgresql" >&2
    echo "       or set DATABASE_URL to a Postgres server where this user may create databases." >&2
    exit 1
  fi
  echo "installing PostgreSQL server binaries with apt-get (no cluster is created or started)..." >&2
  mkdir -p /etc/postgresql-common
  grep -qs '^create_main_cluster' /etc/postgresql-common/createcluster.conf \
    || echo 'create_main_cluster = false' >> /etc/postgresql-common/createcluster.conf
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
}

fl_free_port() {
  local p
  for p in $(seq 55432 55532); do
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      echo "$p"
      return
    fi
  done
  echo "error: no free port between 55432 and 55532" >&2
  exit 1
}

fl_start_private_pg() {
  local bin dir port run_as=()
  bin=$(fl_find_pg_bin)
  if [ -z "$bin" ]; then
    fl_install_pg
    bin=$(fl_find_pg_bin)
    [ -n "$bin" ] || { echo "error: PostgreSQL was installed but initdb was not found under /usr/lib/postgresql" >&2; exit 1; }
  fi
  dir=$(mktemp -d /tmp/fiber-link-pg.XXXXXX)
  if [ "$(id -u)" = 0 ]; then
    # Postgres refuses to run as root: use the postgres system user (created if missing).
    id -u postgres >/dev/null 2>&1 || useradd --system --home-dir /var/lib/postgresql --shell /usr/sbin/nologin postgres
    chown postgres "$dir"
    run_as=(runuser -u postgres --)
  fi
  port=$(fl_free_port)
  local fast=()
  [ "${FIBER_LINK_PG_FAST:-0}" = 1 ] && fast=(-c fsync=off -c full_page_writes=off)
  # The write-ahead log as docs/operations.md recommends for a busy forum's database:
  # checkpoints far enough apart that an index page is imaged once per checkpoint, not once per
  # few thousand tips, and those images compressed (lz4 from PostgreSQL 15 on).
  local wal=(-c max_wal_size=8GB -c checkpoint_timeout=15min)
  local major
  major=$(basename "$(dirname "$bin")")
  if [ "${major%%.*}" -ge 15 ] 2>/dev/null; then wal+=(-c wal_compression=lz4); else wal+=(-c wal_compression=on); fi
  "${run_as[@]}" "$bin/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --no-sync >"$dir/initdb.log" 2>&1 \
    || { cat "$dir/initdb.log" >&2; exit 1; }
  "${run_as[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
    -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=400 -c shared_buffers=256MB ${wal[*]} ${fast[*]} ${FIBER_LINK_PG_OPTIONS:-}" start >/dev/null \
    || { cat "$dir/server.log" >&2; exit 1; }
  FL_PG_STOP=("${run_as[@]}" "$bin/pg_ctl" -D "$dir/data" -m fast stop)
  FL_PG_DIR=$dir
  trap fl_stop_private_pg EXIT
  export DATABASE_URL="postgres://postgres@127.0.0.1:$port/postgres"
  echo "private Postgres cluster on 127.0.0.1:$port ($dir)" >&2
}

fl_stop_private_pg() {
  "${FL_PG_STOP[@]}" >/dev/null 2>&1 || true
  rm -rf "$FL_PG_DIR"
}

if [ -z "${DATABASE_URL:-}" ]; then
  fl_start_private_pg
fi
