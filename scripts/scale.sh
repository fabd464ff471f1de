#!/usr/bin/env bash
# scale.sh: rebalance and rebuild at scale. Writes COUNT (100000) keys of 1 KiB through a
# master over 3 of 5 volumes, stops it, times an offline rebalance to all 5 (and a second
# run, which must find nothing to move), then a rebuild from the 5, with and without -md5.
# Its own cluster on loopback ports from SCALE_PORT (4200) up, data on /dev/shm (or
# SCALE_DIR), removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
COUNT=${COUNT:-100000}
BASE=${SCALE_PORT:-4200}
scripts/deps.sh nginx-light curl time
NAME=scale DIR=${SCALE_DIR:-}
. scripts/cluster.sh
V3=$(IFS=,; echo "${vols[*]:0:3}")
V5=$VOLS
start_master "$V3"
echo "== $COUNT keys of 1 KiB through a master over 3 volumes"
"$DAVKV" thrash -master "127.0.0.1:$BASE" -count "$COUNT" -size 1k -ops put -prefix /scale | awk 'NR <= 2'
stop_master

# timed runs a command, shows its output and errors (not its progress lines), then its
# wall time and peak memory.
timed() {
	local rc=0
	/usr/bin/time -f "%e s wall, %M KiB max RSS" -o "$ROOT/time" "$@" 2>"$ROOT/stderr" || rc=$?
	grep -v 'level=INFO' "$ROOT/stderr" >&2 || true
	cat "$ROOT/time"
	return "$rc"
}
echo "== rebalance 3 -> 5 volumes"
timed "$DAVKV" -volumes "$V5" -db "$ROOT/index" rebalance
echo "== rebalance again"
"$DAVKV" -volumes "$V5" -db "$ROOT/index" rebalance 2>/dev/null | awk 'NR == 1'
echo "== rebuild from 5 volumes"
timed "$DAVKV" -volumes "$V5" -db "$ROOT/rebuilt" rebuild
echo "== rebuild -md5"
timed "$DAVKV" -volumes "$V5" -db "$ROOT/rebuilt-md5" rebuild -md5
