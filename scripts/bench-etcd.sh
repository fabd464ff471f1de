#!/usr/bin/env bash
# bench-etcd.sh: the index in etcd against LevelDB, and one to three masters over one
# etcd, in one run, on this machine (make bench runs it after bench.sh). Its own cluster
# (5 nginx volumes, 3 replicas, a 3-member etcd from Debian) on loopback ports from
# BENCH_ETCD_PORT (4300) up, in a new directory on /dev/shm (or BENCH_DIR: point it at a
# disk to measure etcd's fsyncs too), removed at the end. Each figure is the median of
# ROUNDS (3) runs, the two backends alternating which goes first.
# Environment: ROUNDS, COUNT (3000 keys per thrash), RECORDS (20000, to measure the
# bytes etcd stores per record).
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}
COUNT=${COUNT:-3000}
RECORDS=${RECORDS:-20000}
BASE=${BENCH_ETCD_PORT:-4300}
scripts/deps.sh nginx-light curl etcd-server etcd-client

NAME=bench-etcd DIR=${BENCH_DIR:-}
. scripts/cluster.sh
CLK=$(getconf CLK_TCK)

# A 3-member etcd: clients on BASE+10..12, peers on BASE+13..15.
initial="" etcds=() endpoints=()
for i in 0 1 2; do initial+="m$i=http://127.0.0.1:$((BASE + 13 + i)),"; done
for i in 0 1 2; do
	c=http://127.0.0.1:$((BASE + 10 + i)) p=http://127.0.0.1:$((BASE + 13 + i))
	etcd --name "m$i" --data-dir "$ROOT/etcd$i" --listen-client-urls "$c" --advertise-client-urls "$c" \
		--listen-peer-urls "$p" --initial-advertise-peer-urls "$p" --initial-cluster "${initial%,}" \
		--initial-cluster-state new --initial-cluster-token bench --logger zap --log-level error 2>>"$ROOT/etcd.log" &
	etcds+=($!)
	pids+=($!)
	endpoints+=("127.0.0.1:$((BASE + 10 + i))")
done
EP=$(IFS=,; echo "${endpoints[*]}")
ctl() { ETCDCTL_API=3 etcdctl --endpoints "$EP" "$@"; }
for _ in $(seq 100); do ctl endpoint health >/dev/null 2>&1 && break; sleep 0.2; done
ctl endpoint health >/dev/null

# cpu PID...: the CPU time of processes together, in clock ticks.
cpu() { for p in "$@"; do cat "/proc/$p/stat"; done | awk '{s += $14 + $15} END {print s}'; }
per_key() { awk -v d="$1" -v clk="$CLK" -v n="$2" 'BEGIN {printf "%.0f\n", d / clk / n * 1e6}'; }

echo "bench-etcd: $(nproc) cores, data in $ROOT, $ROUNDS rounds, etcd $(etcd --version | awk '/etcd Version/ {print $3}')" >&2

# 1. what a record costs etcd: its database, compacted and defragmented, before and
# after RECORDS keys (3 replicas each, keys of 20 bytes) are written.
dbsize() {
	local rev
	rev=$(ctl endpoint status -w fields | awk '/"Revision"/ {print $3; exit}')
	ctl compact --physical "$rev" >/dev/null 2>&1 || true
	ctl defrag >/dev/null
	ctl endpoint status -w fields | awk '/"DBSize"/ {print $3; exit}'
}
s0=$(dbsize)
start_master "$VOLS" -replicas 3 -db "etcd://$EP/records"
"$DAVKV" thrash -voltimeout 10s -master "127.0.0.1:$BASE" -count "$RECORDS" -size 1 -ops put -prefix /records >/dev/null
stop_master
s1=$(dbsize)
bpr=$(awk -v a="$s0" -v b="$s1" -v n="$RECORDS" 'BEGIN {printf "%.0f", (b - a) / n}')
keys8g=$(awk -v b="$bpr" 'BEGIN {printf "%.0f", 8 * 2^30 / b / 1e6}')

# 2. thrash through a master on LevelDB and on etcd; the master's CPU per key, and
# etcd's (its three members together).
for f in ks.level ks.etcd cpu.level cpu.etcd cpu.etcdd; do : >"$ROOT/$f"; done
thrash_on() { # thrash_on BACKEND DB
	local m0 e0
	start_master "$VOLS" -replicas 3 -db "$2"
	m0=$(cpu "$master") e0=$(cpu "${etcds[@]}")
	"$DAVKV" thrash -voltimeout 10s -master "127.0.0.1:$BASE" -count "$COUNT" | awk '/^keys\/s/ {print $2}' >>"$ROOT/ks.$1"
	per_key $(($(cpu "$master") - m0)) "$COUNT" >>"$ROOT/cpu.$1"
	[ "$1" = level ] || per_key $(($(cpu "${etcds[@]}") - e0)) "$COUNT" >>"$ROOT/cpu.etcdd"
	stop_master
}
for r in $(seq "$ROUNDS"); do
	if [ $((r % 2)) = 1 ]; then thrash_on level "$ROOT/index$r"; fi
	thrash_on etcd "etcd://$EP/bench$r"
	if [ $((r % 2)) = 0 ]; then thrash_on level "$ROOT/index$r"; fi
	echo "bench-etcd: thrash round $r: LevelDB $(tail -1 "$ROOT/ks.level") keys/s ($(tail -1 "$ROOT/cpu.level") us CPU/key), etcd $(tail -1 "$ROOT/ks.etcd") keys/s ($(tail -1 "$ROOT/cpu.etcd") us CPU/key, etcd $(tail -1 "$ROOT/cpu.etcdd") us)" >&2
done
kl=$(median <"$ROOT/ks.level"); ke=$(median <"$ROOT/ks.etcd")
cl=$(median <"$ROOT/cpu.level"); ce=$(median <"$ROOT/cpu.etcd"); cd=$(median <"$ROOT/cpu.etcdd")

# 3. one, two and three masters over one etcd index, each with its own thrash; keys/s
# of them all together.
ports=("$BASE" $((BASE + 6)) $((BASE + 7)))
for n in 1 2 3; do : >"$ROOT/ks.m$n"; done
for r in $(seq "$ROUNDS"); do
	for n in 1 2 3; do
		ms=()
		for i in $(seq 0 $((n - 1))); do
			"$DAVKV" -port "${ports[$i]}" -volumes "$VOLS" -db "etcd://$EP/masters$r-$n" server 2>>"$ROOT/masters.log" &
			ms+=($!)
			pids+=($!)
		done
		for i in $(seq 0 $((n - 1))); do
			for _ in $(seq 100); do curl -fs "http://127.0.0.1:${ports[$i]}/health" >/dev/null 2>&1 && break; sleep 0.1; done
		done
		t0=$(now)
		ts=()
		for i in $(seq 0 $((n - 1))); do
			"$DAVKV" thrash -voltimeout 10s -master "127.0.0.1:${ports[$i]}" -count "$COUNT" -prefix "/m$i" >/dev/null &
			ts+=($!)
		done
		for p in "${ts[@]}"; do wait "$p"; done
		echo "$(now) $t0" | awk -v n=$((n * COUNT)) '{printf "%.0f\n", n / ($1 - $2)}' >>"$ROOT/ks.m$n"
		kill "${ms[@]}"
		wait "${ms[@]}" 2>/dev/null || true
	done
	echo "bench-etcd: masters round $r: 1: $(tail -1 "$ROOT/ks.m1"), 2: $(tail -1 "$ROOT/ks.m2"), 3: $(tail -1 "$ROOT/ks.m3") keys/s" >&2
done
m1=$(median <"$ROOT/ks.m1"); m2=$(median <"$ROOT/ks.m2"); m3=$(median <"$ROOT/ks.m3")

printf '\n%-58s %12s %12s %8s\n' "measure (median of $ROUNDS)" "etcd" "baseline" "ratio"
printf '%-58s %12s %12s %8s\n' "thrash $COUNT keys of 1 KiB, keys/s (baseline: LevelDB)" "$ke" "$kl" "$(ratio "$ke" "$kl")"
printf '%-58s %12s %12s %8s\n' "master CPU per key, us (baseline: LevelDB)" "$ce" "$cl" "$(ratio "$ce" "$cl")"
printf '%-58s %12s %12s %8s\n' "etcd CPU per key, 3 members together, us" "$cd" "" ""
printf '%-58s %12s %12s %8s\n' "keys/s with 2 masters over one etcd (baseline: 1)" "$m2" "$m1" "$(ratio "$m2" "$m1")"
printf '%-58s %12s %12s %8s\n' "keys/s with 3 masters over one etcd (baseline: 1)" "$m3" "$m1" "$(ratio "$m3" "$m1")"
printf '%-58s %12s %12s %8s\n' "etcd bytes per record, compacted" "$bpr" "" ""
printf '%-58s %12s %12s %8s\n' "records in etcd's largest quota (8 GiB), millions" "$keys8g" "" ""
