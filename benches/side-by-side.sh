#!/usr/bin/env bash
# Side by side, one run, one PostgreSQL cluster: the project's task engine (the bookstore binary,
# --role worker, DATABASE_URL) against graphile_worker 0.14.1 (the peer-bench harness in
# ../shared/peer-bench, or PEER_BENCH). Copied from that harness's script and extended with the
# bulk enqueue rate: ours `run_programs` (one statement) beside graphile's `add_jobs` (one call).
#
#   cargo build --release && bash benches/side-by-side.sh     (from the project root)
#   BOOKSTORE_BIN=/path/to/bookstore bash benches/side-by-side.sh
#
# Throughput: N no-op jobs queued in one statement before the worker starts; timed from the
# first start to the last end (ours: database stamps; graphile: worker start to Nth handler).
# Latency: an idle worker, LAT_JOBS jobs queued one at a time LAT_GAP_MS apart; queue -> start.
# Every one of ours is checked to have finished exactly once (attempt = 1).
set -euo pipefail
HERE=$(cd "${PEER_BENCH:-$(dirname "${BASH_SOURCE[0]}")/../../shared/peer-bench}" && pwd)
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
PGROOT=${PEERPG_ROOT:-/tmp/peerpg}
PGDATA=$PGROOT/data
PORT=${PEERPG_PORT:-55432}
ROUNDS=${ROUNDS:-2}
JOBS=${JOBS:-20000}
LAT_JOBS=${LAT_JOBS:-200}
LAT_GAP_MS=${LAT_GAP_MS:-20}
CS=${CS:-"4 16"}
BIN=$(realpath -m "${BOOKSTORE_BIN:-target/release/bookstore}")
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/tmp/peer-bench-target}
PB=$CARGO_TARGET_DIR/release/peer-bench
OUT=${OUT:-/tmp/side-by-side/$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"; RES=$OUT/results.tsv; : >"$RES"
log() { printf '[%s] %s\n' "$(date +%T)" "$*" >&2; }
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
psql_() { PGOPTIONS='-c client_min_messages=warning' "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PORT" -U bench "$@"; }
field() { printf '%s\n' "$2" | tr '\t' '\n' | sed -n "s/^$1=//p" | head -1; }
emit() { printf '%s\t%s\t%s\t%s\t%s\n' "$@" >>"$RES"; log "$*"; }

[ -x "$BIN" ] || { echo "no bookstore binary at $BIN" >&2; exit 1; }
cargo build --release --locked --manifest-path "$HERE/Cargo.toml" 2>"$OUT/build.log" || { tail -20 "$OUT/build.log"; exit 1; }

if [ ! -f "$PGDATA/PG_VERSION" ]; then
  mkdir -p "$PGROOT"; [ "$(id -u)" = 0 ] && chown postgres:postgres "$PGROOT"
  as_pg "$PGBIN/initdb" -D "$PGDATA" -A trust -U bench >"$OUT/initdb.log" 2>&1
fi
[ "$(id -u)" = 0 ] && chown postgres:postgres "$PGROOT"
stop_cluster() { as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -m fast -w stop >/dev/null 2>&1 || true; }
trap stop_cluster EXIT
as_pg "$PGBIN/pg_ctl" -D "$PGDATA" status >/dev/null 2>&1 || as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -w -t 60 \
  -o "-p $PORT -k $PGROOT -c listen_addresses=127.0.0.1 -c max_connections=200" -l "$PGROOT/log" start >/dev/null
psql_ -d postgres -tAc 'select 1' >/dev/null

gw() { # gw ROUND DB KIND LABEL C [args]
  local round=$1 db=$2 kind=$3 label=$4 c=$5; shift 5
  local line; line=$(timeout 200 "$PB" "$kind" --url "postgres://bench@127.0.0.1:$PORT/$db" \
    --schema "gw_${kind}_${label//[^a-z0-9]/_}_c${c}" --concurrency "$c" --label "$label" --max-s 90 "$@" \
    2>>"$OUT/peer.stderr" | grep '^RESULT' || true)
  if [ "$kind" = throughput ]; then emit "$round" "graphile $label" "$c" "jobs/s" "$(field jobs_per_s "$line")"
    emit "$round" "graphile add_jobs (enqueue)" "$c" "jobs/s queued" "$(field enqueue_per_s "$line")"
  else emit "$round" "graphile $label" "$c" "p50/p99 ms" "$(field p50_ms "$line") / $(field p99_ms "$line")"; fi
}

app_env() { # app_env DB -> env for a node on that database
  echo "DATABASE_URL=postgres://bench@127.0.0.1:$PORT/$1 BOOKSTORE_SEED_DEMO=false BOOKSTORE_LOG=warn"
}
migrate() { # start a web node once so that it migrates, then stop it
  local db=$1 port; port=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
  env $(app_env "$db") BOOKSTORE_ADDR=127.0.0.1:$port "$BIN" --role web >>"$OUT/app.log" 2>&1 & local pid=$!
  for _ in $(seq 1 100); do curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break; sleep 0.2; done
  kill -TERM $pid; wait $pid || true
}
ours_tp() { # ours_tp ROUND C
  local round=$1 c=$2 db=bs_tp_$1_$2
  psql_ -d postgres -c "drop database if exists $db" -c "create database $db"
  migrate "$db"
  # Timed by psql (\timing): the statement alone, as the peer times its add_jobs call.
  local enq_ms; enq_ms=$(psql_ -d "$db" -tA -c '\timing on' \
    -c "select count(*) from run_programs('noop', array_fill('{}'::jsonb, ARRAY[$JOBS]))" | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p')
  emit "$round" "bookstore run_programs (enqueue)" "$c" "jobs/s queued" "$(python3 -c "print(round($JOBS / ($enq_ms / 1000)))")"
  env $(app_env "$db") BOOKSTORE_TASK_CONCURRENCY=$c "$BIN" --role worker >>"$OUT/app.log" 2>&1 & local pid=$!
  local t0; t0=$(date +%s.%N)
  for _ in $(seq 1 600); do
    [ "$(psql_ -d "$db" -tAc "select count(*) from tasks where status in ('scheduled','running')")" = 0 ] && break
    sleep 0.2
  done
  kill -TERM $pid; wait $pid || true
  local rate once
  rate=$(psql_ -d "$db" -tAc "select round($JOBS / extract(epoch from max(end_time) - min(start_time))) from tasks t join programs p on p.id = t.program_id where p.name = 'noop'")
  once=$(psql_ -d "$db" -tAc "select count(*) from tasks t join programs p on p.id = t.program_id where p.name = 'noop' and status = 'finished' and attempt = 1")
  emit "$round" "bookstore (defaults)" "$c" "jobs/s" "$rate ($once/$JOBS finished once)"
  psql_ -d postgres -c "drop database if exists $db"
}
ours_lat() { # ours_lat ROUND
  local round=$1 db=bs_lat_$1
  psql_ -d postgres -c "drop database if exists $db" -c "create database $db"
  migrate "$db"
  env $(app_env "$db") BOOKSTORE_TASK_CONCURRENCY=4 "$BIN" --role worker >>"$OUT/app.log" 2>&1 & local pid=$!
  sleep 2
  python3 - "$PGBIN/psql" "$PORT" "$db" "$LAT_JOBS" "$LAT_GAP_MS" <<'PY'
import subprocess, sys, time
psql, port, db, n, gap = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
p = subprocess.Popen([psql, "-X", "-q", "-h", "127.0.0.1", "-p", port, "-U", "bench", "-d", db],
                     stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
for _ in range(n):
    p.stdin.write("select run_program('noop', NULL);\n"); p.stdin.flush(); time.sleep(gap / 1000)
p.stdin.close(); p.wait()
PY
  sleep 2; kill -TERM $pid; wait $pid || true
  emit "$round" "bookstore (defaults)" 4 "p50/p99 ms" "$(psql_ -d "$db" -tAc "select round((percentile_cont(0.5) within group (order by ms))::numeric, 2) || ' / ' || round((percentile_cont(0.99) within group (order by ms))::numeric, 2) from (select extract(epoch from t.start_time - t.created_at) * 1000 as ms from tasks t join programs p on p.id = t.program_id where p.name = 'noop') q")"
  psql_ -d postgres -c "drop database if exists $db"
}

for round in $(seq 1 "$ROUNDS"); do
  db=peer_sbs_$round
  psql_ -d postgres -c "drop database if exists $db" -c "create database $db"
  for c in $CS; do
    ours_tp "$round" "$c"
    gw "$round" "$db" throughput "localq100+batch1ms" "$c" --jobs "$JOBS" --local-queue 100 --batch-ms 1
    gw "$round" "$db" throughput run_once "$c" --jobs "$JOBS" --run-once
  done
  ours_lat "$round"
  gw "$round" "$db" latency default 4 --jobs "$LAT_JOBS" --gap-ms "$LAT_GAP_MS"
  psql_ -d postgres -c "drop database if exists $db"
done
echo; echo "side by side ($(date -u +%FT%TZ), $(nproc) cores, N=$JOBS, latency n=$LAT_JOBS gap ${LAT_GAP_MS} ms)"
sort -t$'\t' -k2,2 -k3,3n -k4,4 -k1,1n "$RES" | column -t -s$'\t'
