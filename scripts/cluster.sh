# cluster.sh is sourced by bench.sh and scale.sh: a throwaway cluster of five nginx
# volumes on loopback ports BASE+1 to BASE+5 (a master goes on BASE), in a new directory
# on /dev/shm (a RAM file system, so that the disk's own noise does not drown what is
# measured) or in DIR if set, all removed when the script exits.
# Set before sourcing: NAME (for messages and the directory) and BASE; DIR is optional.
# Sets ROOT, DAVKV (the binary, built from this checkout), vols (the volumes, host:port)
# and VOLS (the same, comma-separated); start_master and stop_master run the master;
# median, ratio and now are what the benchmarks compute with.

if [ -n "${DIR:-}" ]; then
	mkdir -p "$DIR"
	ROOT=$(mktemp -d "$DIR/davkv-$NAME.XXXXXX")
elif [ -d /dev/shm ] && [ -w /dev/shm ]; then
	ROOT=$(mktemp -d "/dev/shm/davkv-$NAME.XXXXXX")
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
		echo "$NAME.sh: port $p is in use; choose other ports" >&2
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
done
VOLS=$(IFS=,; echo "${vols[*]}")
for v in "${vols[@]}"; do
	for _ in $(seq 100); do curl -fs -o /dev/null -I "http://$v/" && break; sleep 0.1; done
done

median() { sort -g | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }
now() { date +%s.%N; }

# start_master VOLUMES [FLAG...]: run a master over VOLUMES on BASE, index in ROOT/index,
# once it answers, over HTTP or HTTPS.
start_master() {
	local volumes=$1
	shift
	"$DAVKV" -port "$BASE" -volumes "$volumes" -db "$ROOT/index" "$@" server 2>>"$ROOT/master.log" &
	master=$!
	for _ in $(seq 100); do
		curl -fs "http://127.0.0.1:$BASE/health" >/dev/null 2>&1 && return 0
		curl -fsk "https://127.0.0.1:$BASE/health" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	echo "$NAME.sh: master did not start:" >&2
	cat "$ROOT/master.log" >&2
	exit 1
}

stop_master() {
	kill "$master"
	wait "$master" || true
	master=""
}
