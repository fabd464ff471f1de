#!/usr/bin/env bash
# bench.sh: measure davkv against the physical limit of its design, in one run, on this
# machine, and print a table. It starts its own cluster (5 nginx volumes, a master with 3
# replicas) on loopback ports from BENCH_PORT (4100) up, in BENCH_DIR (a new directory
# on /dev/shm, a RAM file system, so that the disk's own noise does not drown the
# comparisons; point it at a disk to measure one), and removes everything at the end.
# Timings are noisy on shared machines: each figure is the median of ROUNDS (3) runs,
# master and baseline alternating, and every comparison is a ratio within this run.
# Environment: ROUNDS, COUNT (10000 keys per thrash), BIG_MB (1024), WRK_SECONDS (10),
# LIFECYCLE_KEYS (100000).
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}
COUNT=${COUNT:-10000}
BIG_MB=${BIG_MB:-1024}
WRK_SECONDS=${WRK_SECONDS:-10}
BASE=${BENCH_PORT:-4100}
scripts/deps.sh nginx-light wrk curl awscli openssl

NAME=bench DIR=${BENCH_DIR:-}
. scripts/cluster.sh
CLK=$(getconf CLK_TCK)
MASTER=127.0.0.1:$BASE
start_master "$VOLS" -replicas 3

cpu() { awk '{print $14 + $15}' "/proc/$master/stat"; }
# timed FILE CMD...: runs CMD and adds its wall time, in seconds, to FILE.
timed() {
	local file=$1 t0
	shift
	t0=$(now)
	"$@"
	echo "$(now) $t0" | awk '{print $1 - $2}' >>"$file"
}

echo "bench: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo), data in $ROOT, $ROUNDS rounds" >&2

# 1. thrash through the master vs straight to the volumes, and the master's CPU per key.
: >"$ROOT/t.master"; : >"$ROOT/t.direct"; : >"$ROOT/t.cpu"; : >"$ROOT/t.s3cpu"; : >"$ROOT/t.cpu0"; : >"$ROOT/t.cpuauth"
# The administrator's key of the masters with -auth, and of the S3 uploads over TLS.
BENCH_KEY=bench:bench-secret-0123456789
# cpu_per_key FILE [THRASH FLAG...]: thrash COUNT keys and add the master's CPU per key, in
# microseconds, to FILE.
cpu_per_key() {
	local file=$1 before after
	shift
	before=$(cpu)
	"$DAVKV" thrash -master "$MASTER" -count "$COUNT" "$@" >/dev/null
	after=$(cpu)
	awk -v d=$((after - before)) -v clk="$CLK" -v n="$COUNT" 'BEGIN {printf "%.0f\n", d / clk / n * 1e6}' >>"$file"
}
# nometrics_cpu: the master's CPU per key with -metrics=false, on a master restarted for it
# (the index stays), then the master as it was.
nometrics_cpu() {
	stop_master
	start_master "$VOLS" -replicas 3 -metrics=false
	cpu_per_key "$ROOT/t.cpu0"
	stop_master
	start_master "$VOLS" -replicas 3
}
# auth_cpu: the same with -auth, every request with credentials (thrash sends $DAVKV_KEY).
auth_cpu() {
	stop_master
	start_master "$VOLS" -replicas 3 -s3keys "$BENCH_KEY" -auth
	DAVKV_KEY=$BENCH_KEY cpu_per_key "$ROOT/t.cpuauth"
	stop_master
	start_master "$VOLS" -replicas 3
}
for r in $(seq "$ROUNDS"); do
	# Rounds alternate which goes first, with metrics or without, so that a machine
	# slowing down or speeding up favours neither.
	if [ $((r % 2)) = 0 ]; then nometrics_cpu; auth_cpu; fi
	before=$(cpu)
	"$DAVKV" thrash -master "$MASTER" -count "$COUNT" | awk '/^keys\/s/ {print $2}' >>"$ROOT/t.master"
	after=$(cpu)
	awk -v d=$((after - before)) -v clk="$CLK" -v n="$COUNT" 'BEGIN {printf "%.0f\n", d / clk / n * 1e6}' >>"$ROOT/t.cpu"
	# The same keys as S3 requests (PutObject, GetObject streamed, DeleteObject).
	cpu_per_key "$ROOT/t.s3cpu" -s3 -prefix "/thrash3/$r"
	if [ $((r % 2)) = 1 ]; then nometrics_cpu; auth_cpu; fi
	"$DAVKV" thrash -direct -volumes "$VOLS" -replicas 3 -count "$COUNT" | awk '/^keys\/s/ {print $2}' >>"$ROOT/t.direct"
	echo "bench: thrash round $r: master $(tail -1 "$ROOT/t.master") keys/s ($(tail -1 "$ROOT/t.cpu") us CPU/key, $(tail -1 "$ROOT/t.cpu0") without metrics, $(tail -1 "$ROOT/t.cpuauth") with -auth; S3 $(tail -1 "$ROOT/t.s3cpu")), direct $(tail -1 "$ROOT/t.direct") keys/s" >&2
done
tm=$(median <"$ROOT/t.master"); td=$(median <"$ROOT/t.direct"); tc=$(median <"$ROOT/t.cpu"); ts=$(median <"$ROOT/t.s3cpu"); tn=$(median <"$ROOT/t.cpu0"); tauth=$(median <"$ROOT/t.cpuauth")

# 2. redirects for an existing key vs a missing one.
curl -fs -X PUT -d exists "http://$MASTER/bench/exists" >/dev/null
: >"$ROOT/w.hit"; : >"$ROOT/w.miss"
for r in $(seq "$ROUNDS"); do
	wrk -t2 -c100 -d"${WRK_SECONDS}s" "http://$MASTER/bench/exists" | awk '/^Requests\/sec/ {print $2}' >>"$ROOT/w.hit"
	wrk -t2 -c100 -d"${WRK_SECONDS}s" "http://$MASTER/bench/missing" | awk '/^Requests\/sec/ {print $2}' >>"$ROOT/w.miss"
	echo "bench: wrk round $r: existing $(tail -1 "$ROOT/w.hit")/s, missing $(tail -1 "$ROOT/w.miss")/s" >&2
done
wh=$(median <"$ROOT/w.hit"); wm=$(median <"$ROOT/w.miss")

# 3. a large PUT through the master vs three parallel PUTs straight to three volumes, each
# starting with no dirty pages; the master restarted so that its peak RSS is this test's.
stop_master
start_master "$VOLS" -replicas 3
head -c $((BIG_MB << 20)) /dev/urandom >"$ROOT/big"
: >"$ROOT/b.master"; : >"$ROOT/b.direct"
for r in $(seq "$ROUNDS"); do
	sync
	t0=$(now)
	puts=()
	for v in "${vols[@]:0:3}"; do
		curl -fs -o /dev/null -T "$ROOT/big" "http://$v/direct/big" &
		puts+=($!)
	done
	for p in "${puts[@]}"; do wait "$p" || { echo "bench.sh: a direct PUT failed" >&2; exit 1; }; done
	t1=$(now)
	echo "$t1 $t0" | awk '{print $1 - $2}' >>"$ROOT/b.direct"
	for v in "${vols[@]:0:3}"; do curl -fs -o /dev/null -X DELETE "http://$v/direct/big"; done
	sync
	timed "$ROOT/b.master" curl -fs -o /dev/null -T "$ROOT/big" "http://$MASTER/bench/big"
	curl -fs -o /dev/null -X DELETE "http://$MASTER/bench/big"
	echo "bench: $BIG_MB MiB round $r: master $(tail -1 "$ROOT/b.master") s, direct $(tail -1 "$ROOT/b.direct") s" >&2
done
bm=$(median <"$ROOT/b.master"); bd=$(median <"$ROOT/b.direct")
rss=$(awk '/VmHWM/ {printf "%.1f", $2 / 1024}' "/proc/$master/status")

# 5. the large value read through S3 GetObject (streamed by the master) against curl -L
# (a redirect, then nginx). The master runs without -s3keys, so any AWS4 Authorization
# header makes a request S3's and is not checked: this measures the streaming alone.
S3AUTH="Authorization: AWS4-HMAC-SHA256 Credential=bench/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=0"
curl -fs -o /dev/null -X PUT -H "$S3AUTH" -H "X-Amz-Content-Sha256: UNSIGNED-PAYLOAD" "http://$MASTER/s3bench"
curl -fs -o /dev/null -T "$ROOT/big" "http://$MASTER/s3bench/big"
: >"$ROOT/g.s3"; : >"$ROOT/g.native"
for r in $(seq "$ROUNDS"); do
	timed "$ROOT/g.s3" curl -fs -o /dev/null -H "$S3AUTH" -H "X-Amz-Content-Sha256: UNSIGNED-PAYLOAD" "http://$MASTER/s3bench/big"
	timed "$ROOT/g.native" curl -fsL -o /dev/null "http://$MASTER/s3bench/big"
	echo "bench: $BIG_MB MiB GET round $r: S3 $(tail -1 "$ROOT/g.s3") s, curl -L $(tail -1 "$ROOT/g.native") s" >&2
done
gs=$(median <"$ROOT/g.s3"); gn=$(median <"$ROOT/g.native")
curl -fs -o /dev/null -X DELETE "http://$MASTER/s3bench/big"

# 6. the large value uploaded with the AWS CLI (multipart: 8 MiB parts, 10 at once, then
# CompleteMultipartUpload assembling them) against a native PUT (curl -T). Debian's CLI,
# with none of the machine's AWS settings.
aws_cli() {
	env -i HOME="$ROOT/awshome" PATH=/usr/bin:/bin AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench \
		AWS_DEFAULT_REGION=us-east-1 /usr/bin/aws "$@"
}
aws_cli configure set default.s3.addressing_style path
: >"$ROOT/u.aws"; : >"$ROOT/u.native"
for r in $(seq "$ROUNDS"); do
	timed "$ROOT/u.aws" aws_cli --endpoint-url "http://$MASTER" s3 cp --only-show-errors "$ROOT/big" s3://s3bench/up
	curl -fs -o /dev/null -X DELETE "http://$MASTER/s3bench/up"
	timed "$ROOT/u.native" curl -fs -o /dev/null -T "$ROOT/big" "http://$MASTER/s3bench/up"
	curl -fs -o /dev/null -X DELETE "http://$MASTER/s3bench/up"
	echo "bench: $BIG_MB MiB upload round $r: aws s3 cp $(tail -1 "$ROOT/u.aws") s, curl -T $(tail -1 "$ROOT/u.native") s" >&2
done
ua=$(median <"$ROOT/u.aws"); un=$(median <"$ROOT/u.native")

# 6b. the same over TLS, to a master with a self-signed certificate and BENCH_KEY: the
# AWS CLI signs UNSIGNED-PAYLOAD over TLS, so the master hashes nothing.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 -subj /CN=127.0.0.1 \
	-addext subjectAltName=IP:127.0.0.1 -keyout "$ROOT/tls.key" -out "$ROOT/tls.crt" 2>/dev/null
stop_master
start_master "$VOLS" -replicas 3 -s3keys "$BENCH_KEY" -tls-cert "$ROOT/tls.crt" -tls-key "$ROOT/tls.key"
aws_tls() {
	env -i HOME="${AWSHOME:-$ROOT/awshome}" PATH=/usr/bin:/bin AWS_ACCESS_KEY_ID=${BENCH_KEY%%:*} AWS_SECRET_ACCESS_KEY=${BENCH_KEY#*:} \
		AWS_DEFAULT_REGION=us-east-1 /usr/bin/aws --ca-bundle "$ROOT/tls.crt" "$@"
}
TLSMASTER=https://$MASTER
aws_tls --endpoint-url "$TLSMASTER" s3 mb s3://tlsbench >/dev/null
: >"$ROOT/x.aws"; : >"$ROOT/x.native"
for r in $(seq "$ROUNDS"); do
	# Rounds alternate which goes first.
	awsup() { timed "$ROOT/x.aws" aws_tls --endpoint-url "$TLSMASTER" s3 cp --only-show-errors "$ROOT/big" s3://tlsbench/up; }
	curlup() { timed "$ROOT/x.native" curl -fs -o /dev/null --cacert "$ROOT/tls.crt" -T "$ROOT/big" "$TLSMASTER/tlsbench/native"; }
	if [ $((r % 2)) = 0 ]; then awsup; curlup; else curlup; awsup; fi
	curl -fs -o /dev/null --cacert "$ROOT/tls.crt" -X DELETE -u "$BENCH_KEY" "$TLSMASTER/tlsbench/up"
	curl -fs -o /dev/null --cacert "$ROOT/tls.crt" -X DELETE -u "$BENCH_KEY" "$TLSMASTER/tlsbench/native"
	echo "bench: $BIG_MB MiB upload over TLS round $r: aws s3 cp $(tail -1 "$ROOT/x.aws") s, curl -T $(tail -1 "$ROOT/x.native") s" >&2
done
xa=$(median <"$ROOT/x.aws"); xn=$(median <"$ROOT/x.native")
# The same as one PutObject (a multipart threshold above the file): no parts to assemble.
AWSHOME=$ROOT/awsone aws_tls configure set default.s3.addressing_style path
AWSHOME=$ROOT/awsone aws_tls configure set default.s3.multipart_threshold 8GB
: >"$ROOT/x.one"
for r in $(seq "$ROUNDS"); do
	AWSHOME=$ROOT/awsone timed "$ROOT/x.one" aws_tls --endpoint-url "$TLSMASTER" s3 cp --only-show-errors "$ROOT/big" s3://tlsbench/one
	curl -fs -o /dev/null --cacert "$ROOT/tls.crt" -X DELETE "$TLSMASTER/tlsbench/one"
	echo "bench: $BIG_MB MiB one PutObject over TLS round $r: aws s3 cp $(tail -1 "$ROOT/x.one") s" >&2
done
xo=$(median <"$ROOT/x.one")
stop_master
start_master "$VOLS" -replicas 3
rm -f "$ROOT/big"

# 7. a 32 MiB PutObject whose body the master checks against the SHA-256 it was sent
# with (what a SigV4-signed PutObject asks), against a native PUT of the same file; the
# rounds alternate which goes first.
head -c $((32 << 20)) /dev/urandom >"$ROOT/mid"
midsha=$(sha256sum "$ROOT/mid" | cut -d' ' -f1)
: >"$ROOT/p.s3"; : >"$ROOT/p.native"
s3put() { timed "$ROOT/p.s3" curl -fs -o /dev/null -T "$ROOT/mid" -H "$S3AUTH" -H "X-Amz-Content-Sha256: $midsha" "http://$MASTER/s3bench/mid$1"; }
nativeput() { timed "$ROOT/p.native" curl -fs -o /dev/null -T "$ROOT/mid" "http://$MASTER/s3bench/native$1"; }
for r in $(seq $((3 * ROUNDS))); do
	if [ $((r % 2)) = 0 ]; then s3put "$r"; nativeput "$r"; else nativeput "$r"; s3put "$r"; fi
	curl -fs -o /dev/null -X DELETE "http://$MASTER/s3bench/mid$r"
	curl -fs -o /dev/null -X DELETE "http://$MASTER/s3bench/native$r"
	echo "bench: 32 MiB PUT round $r: S3 with SHA-256 $(tail -1 "$ROOT/p.s3") s, native $(tail -1 "$ROOT/p.native") s" >&2
done
ps3=$(median <"$ROOT/p.s3"); pnat=$(median <"$ROOT/p.native")
rm -f "$ROOT/mid"

# 8. lifecycle expiry of LIFECYCLE_KEYS keys (a rule whose date has passed, on a master
# whose lifecycle day is 24 s, so that passes come every second), against the same
# keys deleted by thrash through the native API.
LIFECYCLE_KEYS=${LIFECYCLE_KEYS:-100000}
stop_master
start_master "$VOLS" -replicas 3 -lifecycle-day 24s
curl -fs -o /dev/null -X PUT -H "$S3AUTH" -H "X-Amz-Content-Sha256: UNSIGNED-PAYLOAD" "http://$MASTER/lcbench"
"$DAVKV" thrash -master "$MASTER" -count "$LIFECYCLE_KEYS" -ops put -prefix /lcbench/k >/dev/null
t0=$(now)
"$DAVKV" thrash -master "$MASTER" -count "$LIFECYCLE_KEYS" -ops delete -prefix /lcbench/k >/dev/null
ldel=$(echo "$(now) $t0" | awk '{printf "%.1f", $1 - $2}')
"$DAVKV" thrash -master "$MASTER" -count "$LIFECYCLE_KEYS" -ops put -prefix /lcbench/k >/dev/null
expired() { curl -fs "http://$MASTER/metrics" | awk '/^davkv_lifecycle_expired_keys_total / {print $2}'; }
rule='<LifecycleConfiguration><Rule><ID>all</ID><Filter><Prefix>k</Prefix></Filter><Status>Enabled</Status><Expiration><Date>2020-01-01T00:00:00Z</Date></Expiration></Rule></LifecycleConfiguration>'
t0=$(now)
curl -fs -o /dev/null -X PUT -H "$S3AUTH" -H "X-Amz-Content-Sha256: UNSIGNED-PAYLOAD" --data-binary "$rule" "http://$MASTER/lcbench?lifecycle"
until [ "$(expired)" = "$LIFECYCLE_KEYS" ]; do sleep 0.2; done
lexp=$(echo "$(now) $t0" | awk '{printf "%.1f", $1 - $2}')
echo "bench: $LIFECYCLE_KEYS keys expired in $lexp s, deleted by thrash in $ldel s" >&2
stop_master
start_master "$VOLS" -replicas 3

# 4. 1 MiB values through the master, and straight to the volumes.
n1m=$((COUNT / 20))
mm=$("$DAVKV" thrash -master "$MASTER" -count "$n1m" -size 1M | awk '/^value MB\/s/ {print $3}')
md=$("$DAVKV" thrash -direct -volumes "$VOLS" -replicas 3 -count "$n1m" -size 1M | awk '/^value MB\/s/ {print $3}')

printf '\n%-58s %12s %12s %8s %10s\n' "measure (median of $ROUNDS)" "master" "baseline" "ratio" "target"
printf '%-58s %12s %12s %8s %10s\n' "thrash $COUNT keys of 1 KiB, keys/s (baseline: -direct)" "$tm" "$td" "$(ratio "$tm" "$td")" ">= 0.75"
printf '%-58s %12s %12s %8s %10s\n' "master CPU per key (PUT+GET+DELETE), us" "$tc" "" "" "<= 200"
printf '%-58s %12s %12s %8s %10s\n' "master CPU per key, metrics on (baseline: -metrics=false), us" "$tc" "$tn" "$(ratio "$tc" "$tn")" "<= 1.05"
printf '%-58s %12s %12s %8s %10s\n' "master CPU per key, -auth (baseline: without), us" "$tauth" "$tc" "$(ratio "$tauth" "$tc")" "<= 1.05"
printf '%-58s %12s %12s %8s %10s\n' "master CPU per key via S3 (baseline: native), us" "$ts" "$tc" "$(ratio "$ts" "$tc")" ""
printf '%-58s %12s %12s %8s %10s\n' "wrk redirects/s (baseline: missing key)" "$wh" "$wm" "$(ratio "$wh" "$wm")" ">= 0.8"
printf '%-58s %12s %12s %8s %10s\n' "PUT $BIG_MB MiB, s (baseline: 3 parallel direct PUTs)" "$bm" "$bd" "$(ratio "$bm" "$bd")" "<= 1.3"
printf '%-58s %12s %12s %8s %10s\n' "master peak RSS during the large PUTs, MiB" "$rss" "" "" "< 64"
printf '%-58s %12s %12s %8s %10s\n' "thrash $n1m keys of 1 MiB, value MB/s (baseline: -direct)" "$mm" "$md" "$(ratio "$mm" "$md")" ""
printf '%-58s %12s %12s %8s %10s\n' "GET $BIG_MB MiB via S3, MB/s (baseline: curl -L)" "$(awk -v s="$gs" -v m="$BIG_MB" 'BEGIN {printf "%.0f", m * 1.048576 / s}')" "$(awk -v s="$gn" -v m="$BIG_MB" 'BEGIN {printf "%.0f", m * 1.048576 / s}')" "$(ratio "$gn" "$gs")" ">= 0.8"
printf '%-58s %12s %12s %8s %10s\n' "upload $BIG_MB MiB with aws s3 cp, s (baseline: curl -T)" "$ua" "$un" "$(ratio "$ua" "$un")" ""
printf '%-58s %12s %12s %8s %10s\n' "the same over TLS, s (baseline: curl -T over TLS)" "$xa" "$xn" "$(ratio "$xa" "$xn")" "<= 1.5"
printf '%-58s %12s %12s %8s %10s\n' "the same as one PutObject, s (baseline: curl -T over TLS)" "$xo" "$xn" "$(ratio "$xo" "$xn")" ""
printf '%-58s %12s %12s %8s %10s\n' "PUT 32 MiB, MB/s: S3 with SHA-256 (baseline: native)" "$(awk -v s="$ps3" 'BEGIN {printf "%.0f", 33.554432 / s}')" "$(awk -v s="$pnat" 'BEGIN {printf "%.0f", 33.554432 / s}')" "$(ratio "$pnat" "$ps3")" ">= 0.9"
printf '%-58s %12s %12s %8s %10s\n' "expire $LIFECYCLE_KEYS keys, s (baseline: thrash -ops delete)" "$lexp" "$ldel" "$(ratio "$lexp" "$ldel")" ""
