#!/usr/bin/env bash
# bench-postgres.sh: the index in PostgreSQL against LevelDB, and one to three masters
# over one PostgreSQL, in one run, on this machine (make bench runs it after
# bench-etcd.sh). Its own cluster (5 nginx volumes, 3 replicas, a PostgreSQL server
# from Debian with its default settings, fsync on) on loopback ports from
# BENCH_PG_PORT (4400) up, in a new directory on /dev/shm (or BENCH_DIR: point it at a
# disk to measure PostgreSQL's fsyncs too), removed at the end. Each figure is the
# median of ROUNDS (3) runs, the two backends alternating which goes first. Then
# SCALE_RECORDS (10000000) records are loaded straight into the records table (one
# real record's bytes under each key, by SQL: davkv's own writes would take hours) to
# time ?list pages and a rebalance dry-run over them, and measure the table's size.
# Environment: ROUNDS, COUNT (3000 keys per thrash), RECORDS (20000, to measure the
# bytes PostgreSQL stores per record and the records/s migrate writes), SCALE_RECORDS.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}
COUNT=${COUNT:-3000}
RECORDS=${RECORDS:-20000}
SCALE_RECORDS=${SCALE_RECORDS:-10000000}
BASE=${BENCH_PG_PORT:-4400}
scripts/deps.sh nginx-light curl postgresql time

NAME=bench-postgres DIR=${BENCH_DIR:-}
. scripts/cluster.sh
BACKEND=pg
. scripts/bench-index.sh

# The server, as the postgres user when run as root (PostgreSQL refuses root).
PGBIN=$(dirname "$(ls -d /usr/lib/postgresql/*/bin/postgres | sort -V | tail -n 1)")
PGPORT=$((BASE + 10))
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
chmod 755 "$ROOT"
mkdir "$ROOT/pg"
[ "$(id -u)" != 0 ] || chown postgres: "$ROOT/pg"
as_pg "$PGBIN/initdb" -D "$ROOT/pg/data" -U davkv --auth=trust -E UTF8 --locale=C >/dev/null
as_pg setsid "$PGBIN/postgres" -D "$ROOT/pg/data" -p "$PGPORT" -c listen_addresses=127.0.0.1 \
	-c unix_socket_directories="$ROOT/pg" -c max_connections=200 2>>"$ROOT/postgres.log" &
pids+=($!)
PGURL="postgres://davkv@127.0.0.1:$PGPORT/postgres?sslmode=disable"
psql_() { "$PGBIN/psql" -X -q -t -A -v ON_ERROR_STOP=1 "$PGURL" "$@"; }
for _ in $(seq 100); do psql_ -c 'SELECT 1' >/dev/null 2>&1 && break; sleep 0.2; done
psql_ -c 'SELECT 1' >/dev/null
postmaster=$(head -n 1 "$ROOT/pg/data/postmaster.pid")

# server_cpu: the CPU time of the server and its backends (alive: their own; gone: in
# the postmaster's children's) together (see bench-index.sh).
server_cpu() {
	{
		awk '{print $16 + $17}' "/proc/$postmaster/stat"
		for p in $(pgrep -P "$postmaster"); do awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || true; done
	} | awk '{s += $1} END {print s}'
}

echo "bench-postgres: $(nproc) cores, data in $ROOT, $ROUNDS rounds, $("$PGBIN/postgres" --version)" >&2

# 1. what a record costs PostgreSQL: the schema's size on disk (tables and indexes,
# vacuumed) before and after RECORDS keys (3 replicas each, keys of 20 bytes) are
# written; then migrate's rate copying them into a new schema through the Index.
size() { psql_ -c "VACUUM" -c "SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = '$1' AND c.relkind IN ('r', 't', 'm')"; }
start_master "$VOLS" -replicas 3 -db "$PGURL&schema=records"
s0=$(size records)
"$DAVKV" thrash -voltimeout 10s -master "127.0.0.1:$BASE" -count "$RECORDS" -size 1 -ops put -prefix /records >/dev/null
stop_master
s1=$(size records)
bpr=$(awk -v a="$s0" -v b="$s1" -v n="$RECORDS" 'BEGIN {printf "%.0f", (b - a) / n}')
t0=$(now)
"$DAVKV" migrate -db "$PGURL&schema=records" -to "$PGURL&schema=copied" >/dev/null 2>&1
mig=$(echo "$(now) $t0" | awk -v n="$RECORDS" '{printf "%.0f", n / ($1 - $2)}')

# 2. thrash through a master on LevelDB and on PostgreSQL; the master's CPU per key,
# and the server's.
thrash_rounds "$PGURL&schema=bench"
kl=$(median <"$ROOT/ks.level"); kp=$(median <"$ROOT/ks.pg")
cl=$(median <"$ROOT/cpu.level"); cp=$(median <"$ROOT/cpu.pg"); cd=$(median <"$ROOT/cpu.pgd")

# 3. one, two and three masters over one PostgreSQL index, each with its own thrash;
# keys/s of them all together.
masters_rounds "$PGURL&schema=masters"
m1=$(median <"$ROOT/ks.m1"); m2=$(median <"$ROOT/ks.m2"); m3=$(median <"$ROOT/ks.m3")

# 4. SCALE_RECORDS records: one real record's bytes (written by davkv above) under
# each of SCALE_RECORDS keys, and the statistics to match; then ?list pages of 1000
# from the start, the middle and the end, and a rebalance dry-run over them all.
start_master "$VOLS" -replicas 3 -db "$PGURL&schema=scale" # creates the tables
stop_master
t0=$(now)
psql_ -c "SET search_path = scale" -c "ALTER TABLE records SET UNLOGGED" \
	-c "INSERT INTO records (key, rev, state, size, pending, value)
		SELECT convert_to('/scale/' || lpad(i::text, 10, '0'), 'UTF8'), nextval('revs'), r.state, r.size, false, r.value
		FROM generate_series(1, $SCALE_RECORDS) i, (SELECT * FROM records.records WHERE NOT pending LIMIT 1) r" \
	-c "ALTER TABLE records SET LOGGED" \
	-c "INSERT INTO stats SELECT 0, state, $SCALE_RECORDS, $SCALE_RECORDS * size FROM records LIMIT 1" -c "VACUUM ANALYZE records"
load=$(echo "$(now) $t0" | awk '{printf "%.0f", $1 - $2}')
ssize=$(size scale)
start_master "$VOLS" -replicas 3 -db "$PGURL&schema=scale"
page() { # page START: ms for a ?list page of 1000 keys from START
	local t0
	t0=$(now)
	curl -fs "http://127.0.0.1:$BASE/scale/?list&limit=1000&start=$1" | grep -q '"keys"'
	echo "$(now) $t0" | awk '{printf "%.0f", ($1 - $2) * 1000}'
}
pages="$(page "")/$(page "/scale/$(printf %010d $((SCALE_RECORDS / 2)))")/$(page "/scale/$(printf %010d $((SCALE_RECORDS - 500)))")"
stop_master
/usr/bin/time -f "%e" -o "$ROOT/rebalance.time" "$DAVKV" -volumes "$VOLS" -replicas 3 -db "$PGURL&schema=scale" rebalance -dry-run >"$ROOT/rebalance.out" 2>/dev/null
reb=$(cat "$ROOT/rebalance.time")
echo "bench-postgres: rebalance -dry-run over $SCALE_RECORDS records: $(head -n 1 "$ROOT/rebalance.out")" >&2

printf '\n%-64s %12s %12s %8s\n' "measure (median of $ROUNDS)" "PostgreSQL" "baseline" "ratio"
printf '%-64s %12s %12s %8s\n' "thrash $COUNT keys of 1 KiB, keys/s (baseline: LevelDB)" "$kp" "$kl" "$(ratio "$kp" "$kl")"
printf '%-64s %12s %12s %8s\n' "master CPU per key, us (baseline: LevelDB)" "$cp" "$cl" "$(ratio "$cp" "$cl")"
printf '%-64s %12s %12s %8s\n' "PostgreSQL CPU per key, server and backends, us" "$cd" "" ""
printf '%-64s %12s %12s %8s\n' "keys/s with 2 masters over one PostgreSQL (baseline: 1)" "$m2" "$m1" "$(ratio "$m2" "$m1")"
printf '%-64s %12s %12s %8s\n' "keys/s with 3 masters over one PostgreSQL (baseline: 1)" "$m3" "$m1" "$(ratio "$m3" "$m1")"
printf '%-64s %12s %12s %8s\n' "PostgreSQL bytes per record, tables and indexes" "$bpr" "" ""
printf '%-64s %12s %12s %8s\n' "records/s that migrate writes into PostgreSQL" "$mig" "" ""
printf '%-64s %12s %12s %8s\n' "$SCALE_RECORDS records loaded by SQL, s" "$load" "" ""
printf '%-64s %12s %12s %8s\n' "their schema on disk, bytes per record" "$(awk -v s="$ssize" -v n="$SCALE_RECORDS" 'BEGIN {printf "%.0f", s / n}')" "" ""
printf '%-64s %12s %12s %8s\n' "?list page of 1000 at the start/middle/end, ms" "$pages" "" ""
printf '%-64s %12s %12s %8s\n' "rebalance -dry-run over them, s" "$reb" "" ""
