#!/usr/bin/env bash
# deps.sh [PACKAGE...]: install the Debian packages davkv needs that are missing
# (nginx-light by default), with apt-get, as root or through sudo.
set -euo pipefail
want=("$@")
[ ${#want[@]} -gt 0 ] || want=(nginx-light)
missing=()
# present: a path must be executable; a name must be on PATH or in /usr/sbin.
present() {
	case "$1" in
	/*) [ -x "$1" ] ;;
	*) command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] ;;
	esac
}
for pkg in "${want[@]}"; do
	case "$pkg" in
	nginx-light) cmd=nginx ;;
	time) cmd=/usr/bin/time ;; # not bash's keyword
	# Debian's own copies, by path: another on PATH (a pyenv shim) does not count.
	awscli) cmd=/usr/bin/aws ;;
	python3-boto3) cmd=/usr/lib/python3/dist-packages/boto3 ;;
	rclone) cmd=/usr/bin/rclone ;;
	nftables) cmd=nft ;;
	etcd-server) cmd=etcd ;;
	etcd-client) cmd=etcdctl ;;
	# The server is off PATH, under its major version.
	postgresql) cmd=$(ls -d /usr/lib/postgresql/*/bin/postgres 2>/dev/null | tail -n 1) && [ -n "$cmd" ] || cmd=/usr/lib/postgresql/none ;;
	*) cmd=$pkg ;;
	esac
	present "$cmd" || missing+=("$pkg")
done
[ ${#missing[@]} -gt 0 ] || exit 0
sudo=""
if [ "$(id -u)" != 0 ]; then
	command -v sudo >/dev/null 2>&1 || { echo "deps.sh: need root or sudo to install ${missing[*]}" >&2; exit 1; }
	sudo=sudo
fi
echo "deps.sh: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Debian starts a system nginx on port 80 when it installs one; davkv does not use it.
if [[ " ${missing[*]} " == *" nginx-light "* ]]; then
	$sudo service nginx stop >/dev/null 2>&1 || true
fi
# The same for etcd: the tests and benchmarks start clusters of their own.
if [[ " ${missing[*]} " == *" etcd-server "* ]]; then
	$sudo service etcd stop >/dev/null 2>&1 || true
fi
# And for PostgreSQL, which starts a cluster of its own on 5432.
if [[ " ${missing[*]} " == *" postgresql "* ]]; then
	$sudo service postgresql stop >/dev/null 2>&1 || true
fi
