#!/usr/bin/env bash
# run.sh: start a local davkv cluster in the foreground: 3 nginx volumes and a master,
# all on localhost, data under $DATA. Ctrl-C (or SIGTERM) stops all of it.
# Environment: DATA (./data), PORT (master, 3000), VOLUME_PORTS ("3001 3002 3003"),
# MASTER_FLAGS (more of the master's flags, such as -auth).
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-./data}
PORT=${PORT:-3000}
VOLUME_PORTS=${VOLUME_PORTS:-"3001 3002 3003"}
mkdir -p "$DATA"
go build -o ./davkv .

pids=()
stop() {
	trap - EXIT INT TERM
	for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
	wait || true
}
trap stop EXIT
trap 'stop; exit 0' INT TERM

volumes=()
for p in $VOLUME_PORTS; do
	PORT=$p BIND=127.0.0.1 ./volume.sh "$DATA/volume$p" &
	pids+=($!)
	volumes+=("localhost:$p")
done
vols=$(IFS=,; echo "${volumes[*]}")
for v in "${volumes[@]}"; do
	for _ in $(seq 100); do
		curl -fsS -o /dev/null -I "$v/" 2>/dev/null && break
		sleep 0.1
	done
done
# MASTER_FLAGS is split into flags on purpose.
# shellcheck disable=SC2086
./davkv -port "$PORT" -volumes "$vols" -db "$DATA/indexdb" server ${MASTER_FLAGS:-} &
pids+=($!)

for _ in $(seq 100); do
	if curl -fsS "localhost:$PORT/health" >/dev/null 2>&1; then
		echo "davkv: cluster up: master on localhost:$PORT, volumes $vols, data in $DATA" >&2
		break
	fi
	sleep 0.1
done
wait -n
echo "run.sh: a process of the cluster exited; stopping the rest" >&2
exit 1
