#!/usr/bin/env bash
# The Discourse plugin's tests, without Discourse (plugins/discourse-fiber-link/README.md):
#   Ruby minitest   client signing, client and proxy core against the real service, feed sync
#   node --test     the plugin's pure JS modules and its locale coverage
#   browser walk    the real .gjs components in headless Chromium, through the Ruby proxy core,
#                   against the real service; screenshots in artifacts/plugin/
#   lint            eslint, prettier, ember-template-lint, stylelint (@discourse/lint-configs),
#                   rubocop and ruby -wc
# It starts its own `fiber-link dev` (private Postgres, hub simulator, API, worker) and stops it.
#
# Env: FIBER_LINK_BIN (default target/debug/fiber-link), CHROMIUM (default /usr/bin/chromium),
#      ARTIFACTS (default artifacts; screenshots go to $ARTIFACTS/plugin).
# Exit status: non-zero if anything failed. Last line: "Plugin tests: N passed, N failed, N skipped".
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PLUGIN=$ROOT/plugins/discourse-fiber-link
HARNESS=$ROOT/tests/plugin
BIN=$(realpath -m "${FIBER_LINK_BIN:-target/debug/fiber-link}")
SHOTS=$(realpath -m "${ARTIFACTS:-artifacts}")/plugin
export CHROMIUM=${CHROMIUM:-/usr/bin/chromium}

# --- what the tests need (Debian packages and the committed npm lockfiles) -------------------
need=()
command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || need+=(nodejs npm)
command -v ruby >/dev/null 2>&1 || need+=(ruby)
[ -x "$CHROMIUM" ] || need+=(chromium)
command -v rubocop >/dev/null 2>&1 || need+=(rubocop)
if command -v ruby >/dev/null 2>&1; then
  for lib in minitest:ruby-minitest rack:ruby-rack webrick:ruby-webrick rqrcode:ruby-rqrcode; do
    ruby -e "require '${lib%%:*}'" >/dev/null 2>&1 || need+=("${lib##*:}")
  done
else
  need+=(ruby-minitest ruby-rack ruby-webrick ruby-rqrcode)
fi
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "== installing ${need[*]} (apt-get)"
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null \
      || { echo "error: apt-get install ${need[*]} failed" >&2; exit 1; }
  else
    echo "error: the plugin tests need: ${need[*]}. Install with: sudo apt-get install -y ${need[*]}" >&2
    exit 1
  fi
fi
for dir in "$PLUGIN" "$HARNESS"; do
  if [ ! -d "$dir/node_modules" ] || [ "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ]; then
    echo "== npm ci in ${dir#"$ROOT"/}"
    npm ci --prefix "$dir" --no-audit --no-fund >/dev/null || { echo "error: npm ci failed in $dir" >&2; exit 1; }
  fi
done
if [ ! -x "$BIN" ]; then
  echo "error: no fiber-link binary at $BIN (cargo build, or set FIBER_LINK_BIN)" >&2
  exit 1
fi
mkdir -p "$SHOTS"
rm -f "$SHOTS"/*.png

# --- the service: fiber-link dev with its own private Postgres ------------------------------
work=$(mktemp -d "${TMPDIR:-/tmp}/fiber-link-plugin.XXXXXX")
chmod 755 "$work"
read -r API HUB DEMO PG CONSOLE < <(ruby -rsocket -e '
  s = 5.times.map { TCPServer.new("127.0.0.1", 0) }
  puts s.map { |x| x.addr[1] }.join(" ")
  s.each(&:close)')
dev_pid=
cleanup() {
  if [ -n "$dev_pid" ] && kill -0 "$dev_pid" 2>/dev/null; then
    kill -TERM "$dev_pid" 2>/dev/null
    for _ in $(seq 1 300); do kill -0 "$dev_pid" 2>/dev/null || break; sleep 0.1; done
  fi
  # as root the private cluster lives outside the dev dir (see fiber-link dev); remove it too
  if [ -f "$work/dev/pg-home" ]; then
    pg_home=$(cat "$work/dev/pg-home")
    case "$pg_home" in "$work"*) ;; /*fiber-link-dev/*) rm -rf "$pg_home" ;; esac
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "== starting fiber-link dev (api :$API, hub :$HUB)"
env -u DATABASE_URL "$BIN" dev --dir "$work/dev" --api-port "$API" --hub-port "$HUB" --demo-port "$DEMO" \
  --pg-port "$PG" --console-port "$CONSOLE" >"$work/dev.log" 2>&1 &
dev_pid=$!
for _ in $(seq 1 900); do
  [ -f "$work/dev/dev.env" ] && break
  if ! kill -0 "$dev_pid" 2>/dev/null; then
    echo "error: fiber-link dev exited:" >&2; tail -20 "$work/dev.log" >&2; exit 1
  fi
  sleep 0.1
done
[ -f "$work/dev/dev.env" ] || { echo "error: fiber-link dev did not start in 90 s" >&2; tail -20 "$work/dev.log" >&2; exit 1; }
set -a
# shellcheck disable=SC1091
. "$work/dev/dev.env"
set +a

# --- the suites -------------------------------------------------------------------------------
passed=0 failed=0 skipped=0
failures=()
log=$work/suite.log

echo "== Ruby (minitest): client, proxy core, settled feed, against the real service"
(cd "$PLUGIN" && ruby -w -Itest/ruby -e 'Dir["test/ruby/*_test.rb"].sort.each { |f| require File.expand_path(f) }') \
  2>&1 | tee "$log"
st=${PIPESTATUS[0]}
if line=$(grep -E '^[0-9]+ runs, [0-9]+ assertions, [0-9]+ failures, [0-9]+ errors, [0-9]+ skips' "$log" | tail -1); then
  read -r runs _ _ _ fails _ errs _ skips _ <<<"$line"
  passed=$((passed + runs - fails - errs - skips)); failed=$((failed + fails + errs)); skipped=$((skipped + skips))
fi
[ "$st" = 0 ] || failures+=("ruby")
[ -n "${line:-}" ] || { failed=$((failed + 1)); failures+=("ruby (no summary)"); }

count_node() { # adds node --test's "# pass/# fail/# skipped" from $log
  local p f s
  p=$(awk '/^# pass /{print $3}' "$log" | tail -1); f=$(awk '/^# fail /{print $3}' "$log" | tail -1)
  s=$(awk '/^# skipped /{print $3}' "$log" | tail -1)
  if [ -z "$p" ]; then failed=$((failed + 1)); return 1; fi
  passed=$((passed + p)); failed=$((failed + ${f:-0})); skipped=$((skipped + ${s:-0}))
}

echo "== JS (node --test): amount, polling, errors, states, locales"
node --test --test-reporter=tap "$PLUGIN/test/node/" 2>&1 | tee "$log" | grep -E '^(not ok|# (tests|pass|fail|skipped))'
st=${PIPESTATUS[0]}
count_node || failures+=("node (no summary)")
[ "$st" = 0 ] || failures+=("node")

echo "== Browser (headless Chromium): tip modal and dashboard through the Ruby proxy to the service"
ARTIFACTS=$SHOTS node --test --test-reporter=tap "$HARNESS/" 2>&1 | tee "$log" \
  | grep -vE '^\s+(duration_ms|\.\.\.|---|type:)' | grep -E '^(not ok|ok|# (tests|pass|fail|skipped))|^\s+(error|expected|actual|location):' 
st=${PIPESTATUS[0]}
count_node || failures+=("browser (no summary)")
[ "$st" = 0 ] || failures+=("browser")
echo "screenshots: $SHOTS/"

echo "== Lint"
lint() { # name, command...: one check each
  local name=$1; shift
  if out=$("$@" 2>&1); then
    echo "ok   $name"; passed=$((passed + 1))
  else
    echo "FAIL $name"; echo "$out" | tail -30; failed=$((failed + 1)); failures+=("lint: $name")
  fi
}
cd "$PLUGIN"
lint eslint npx --no-install eslint assets/javascripts test/node test/javascripts
lint prettier npx --no-install prettier --check "assets/**/*.{scss,js,gjs}" "test/node/**/*.js" "test/javascripts/**/*.js"
lint ember-template-lint npx --no-install ember-template-lint assets/javascripts
lint stylelint npx --no-install stylelint "assets/**/*.scss"
lint rubocop rubocop --format simple -c .rubocop.yml . "$HARNESS/server.rb"
lint "ruby -wc" bash -c 'for f in $(find . "$0" -name "*.rb" -not -path "*/node_modules/*"); do
  out=$(ruby -wc "$f" 2>&1) || { echo "$f: $out"; exit 1; }
  case "$out" in *warning*) echo "$f: $out"; exit 1;; esac
done' "$HARNESS"
cd "$ROOT"

echo
[ ${#failures[@]} -eq 0 ] || echo "failed: ${failures[*]}"
echo "Plugin tests: $passed passed, $failed failed, $skipped skipped"
[ ${#failures[@]} -eq 0 ] && [ "$failed" = 0 ]
