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
if [ -n "${SCALE_DIR:-}" ]; then
	mkdir -p "$SCALE_DIR"
	ROOT=$(mktemp -d "$SCALE_DIR/davkv-scale.XXXXXX")
elif [ -d /dev/shm ] && [ -w /dev/shm ]; then
	ROOT=$(mktemp -d /dev/shm/davkv-scale.XXXXXX)
else
	ROOT=$(mktemp -d)
fi
pids=()
master=""
cleanup() {
	[ -z "$master" ] || kill "$master" 2>/dev/null || true
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$ROOT"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
for p in $(seq "$BASE" $((BASE + 5))); do
	if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
		echo "scale.sh: port $p is in use; set SCALE_PORT" >&2
		exit 1
	fi
done
go build -o "$ROOT/davkv" .
DAVKV=$ROOT/davkv
vols=()
for i in 1 2 3 4 5; do
	PORT=$((BASE + i)) BIND=127.0.0.1 ./volume.sh "$ROOT/volume$i" >/dev/null 2>&1 &
	pids+=($!)
	vols+=("127.0.0.1:$((BASE + i))")
	for _ in $(seq 100); do curl -fs -o /dev/null -I "http://127.0.0.1:$((BASE + i))/" && break; sleep 0.1; done
done
V3=$(IFS=,; echo "${vols[*]:0:3}")
V5=$(IFS=,; echo "${vols[*]}")

"$DAVKV" -port "$BASE" -volumes "$V3" -db "$ROOT/index" server 2>"$ROOT/master.log" &
master=$!
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$BASE/health" >/dev/null && break; sleep 0.1; done
echo "== $COUNT keys of 1 KiB through a master over 3 volumes"
"$DAVKV" thrash -master "127.0.0.1:$BASE" -count "$COUNT" -size 1k -ops put -prefix /scale | awk 'NR <= 2'
kill "$master"
wait "$master" || true
master=""

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
