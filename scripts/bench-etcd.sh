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
BACKEND=etcd
. scripts/bench-index.sh

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
# server_cpu: the CPU time of etcd's three members together (see bench-index.sh).
server_cpu() { cpu "${etcds[@]}"; }

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
thrash_rounds "etcd://$EP/bench"
kl=$(median <"$ROOT/ks.level"); ke=$(median <"$ROOT/ks.etcd")
cl=$(median <"$ROOT/cpu.level"); ce=$(median <"$ROOT/cpu.etcd"); cd=$(median <"$ROOT/cpu.etcdd")

# 3. one, two and three masters over one etcd index, each with its own thrash; keys/s
# of them all together.
masters_rounds "etcd://$EP/masters"
m1=$(median <"$ROOT/ks.m1"); m2=$(median <"$ROOT/ks.m2"); m3=$(median <"$ROOT/ks.m3")

printf '\n%-58s %12s %12s %8s\n' "measure (median of $ROUNDS)" "etcd" "baseline" "ratio"
printf '%-58s %12s %12s %8s\n' "thrash $COUNT keys of 1 KiB, keys/s (baseline: LevelDB)" "$ke" "$kl" "$(ratio "$ke" "$kl")"
printf '%-58s %12s %12s %8s\n' "master CPU per key, us (baseline: LevelDB)" "$ce" "$cl" "$(ratio "$ce" "$cl")"
printf '%-58s %12s %12s %8s\n' "etcd CPU per key, 3 members together, us" "$cd" "" ""
printf '%-58s %12s %12s %8s\n' "keys/s with 2 masters over one etcd (baseline: 1)" "$m2" "$m1" "$(ratio "$m2" "$m1")"
printf '%-58s %12s %12s %8s\n' "keys/s with 3 masters over one etcd (baseline: 1)" "$m3" "$m1" "$(ratio "$m3" "$m1")"
printf '%-58s %12s %12s %8s\n' "etcd bytes per record, compacted" "$bpr" "" ""
printf '%-58s %12s %12s %8s\n' "records in etcd's largest quota (8 GiB), millions" "$keys8g" "" ""
