# bench-index.sh is sourced by bench-etcd.sh and bench-postgres.sh, after cluster.sh:
# the steps they share, measuring a shared index backend against LevelDB and one to
# three masters over it. The sourcing script defines server_cpu (the CPU time, in clock
# ticks, of the backend's server processes together) and sets BACKEND (its name in
# the files under ROOT); COUNT and ROUNDS are as in its header.

CLK=$(getconf CLK_TCK)

# cpu PID...: the CPU time of processes together, in clock ticks.
cpu() { for p in "$@"; do cat "/proc/$p/stat"; done | awk '{s += $14 + $15} END {print s}'; }
# per_key TICKS KEYS: microseconds of CPU per key.
per_key() { awk -v d="$1" -v clk="$CLK" -v n="$2" 'BEGIN {printf "%.0f\n", d / clk / n * 1e6}'; }

# thrash_on NAME DB: a thrash of COUNT keys through a master on DB; adds its keys/s to
# ROOT/ks.NAME, the master's CPU per key to ROOT/cpu.NAME and, but for LevelDB
# (level), the server's to ROOT/cpu.NAMEd.
thrash_on() {
	local m0 s0
	start_master "$VOLS" -replicas 3 -db "$2"
	m0=$(cpu "$master") s0=$(server_cpu)
	"$DAVKV" thrash -voltimeout 10s -master "127.0.0.1:$BASE" -count "$COUNT" | awk '/^keys\/s/ {print $2}' >>"$ROOT/ks.$1"
	per_key $(($(cpu "$master") - m0)) "$COUNT" >>"$ROOT/cpu.$1"
	[ "$1" = level ] || per_key $(($(server_cpu) - s0)) "$COUNT" >>"$ROOT/cpu.$1d"
	stop_master
}

# thrash_rounds DBPREFIX: ROUNDS rounds of thrash_on on LevelDB and on the backend
# (DBPREFIX and the round's number), alternating which goes first.
thrash_rounds() {
	local r
	for f in ks.level "ks.$BACKEND" cpu.level "cpu.$BACKEND" "cpu.${BACKEND}d"; do : >"$ROOT/$f"; done
	for r in $(seq "$ROUNDS"); do
		if [ $((r % 2)) = 1 ]; then thrash_on level "$ROOT/index$r"; fi
		thrash_on "$BACKEND" "$1$r"
		if [ $((r % 2)) = 0 ]; then thrash_on level "$ROOT/index$r"; fi
		echo "$NAME: thrash round $r: LevelDB $(tail -1 "$ROOT/ks.level") keys/s ($(tail -1 "$ROOT/cpu.level") us CPU/key), $BACKEND $(tail -1 "$ROOT/ks.$BACKEND") keys/s ($(tail -1 "$ROOT/cpu.$BACKEND") us CPU/key, its server $(tail -1 "$ROOT/cpu.${BACKEND}d") us)" >&2
	done
}

# masters_rounds DBPREFIX: ROUNDS rounds of one, two and three masters over one index
# (DBPREFIX, the round, _, the number of masters), each with its own thrash; adds the
# keys/s of them all together to ROOT/ks.mN.
masters_rounds() {
	local ports=("$BASE" $((BASE + 6)) $((BASE + 7))) r n i p t0 ms ts
	for n in 1 2 3; do : >"$ROOT/ks.m$n"; done
	for r in $(seq "$ROUNDS"); do
		for n in 1 2 3; do
			ms=()
			for i in $(seq 0 $((n - 1))); do
				"$DAVKV" -port "${ports[$i]}" -volumes "$VOLS" -db "$1${r}_$n" server 2>>"$ROOT/masters.log" &
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
		echo "$NAME: masters round $r: 1: $(tail -1 "$ROOT/ks.m1"), 2: $(tail -1 "$ROOT/ks.m2"), 3: $(tail -1 "$ROOT/ks.m3") keys/s" >&2
	done
}
