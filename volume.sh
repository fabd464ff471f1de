#!/usr/bin/env bash
# volume.sh DIR: run one davkv volume, a stock nginx with the WebDAV module serving DIR,
# in the foreground. Environment:
#   PORT   port to listen on (default 3001)
#   BIND   address to listen on (default: all addresses)
#   NGINX  the nginx binary (default: nginx on PATH, else /usr/sbin/nginx)
#   DAVKV_SECRET (or DAVKV_SECRET_FILE, a file holding it)
#          a secret shared with the master: requests other than GET and HEAD that do
#          not carry it in the X-Davkv-Secret header are refused with 403, so that only
#          the master (and davkv's commands, given the same variable) write. At least
#          16 characters of letters, digits and -._~+/=. Unset: anyone may write.
#   DAVKV_SIGNREADS=1
#          with the secret, GET and HEAD also need it, or a signature from the master
#          (its -signreads redirects: ?st=...&e=..., checked by nginx's secure_link);
#          unsigned, tampered and expired links get 403.
#   DAVKV_TLS_CERT, DAVKV_TLS_KEY
#          PEM files of a certificate (with its chain) and its key: the volume speaks
#          HTTPS only, for masters started with -volume-tls, where the network between
#          masters, volumes and clients is not trusted. Unset: plain HTTP.
# Everything nginx needs (config, pid, logs, request-body temp files) lives in DIR/.nginx,
# so it needs no root and several volumes run side by side. The temp files share DIR's
# file system, so a finished PUT is an atomic rename and a half-sent body never appears
# under its final name. nginx's autoindex skips names starting with a dot, so .nginx never
# shows up in the listings rebuild reads, and it is refused over HTTP.
set -euo pipefail

if [ $# -ne 1 ]; then
	echo "usage: PORT=3001 $0 DIR" >&2
	exit 2
fi
PORT=${PORT:-3001}
BIND=${BIND:-}
NGINX=${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}
if [ ! -x "$NGINX" ]; then
	echo "volume.sh: nginx not found; install it with: apt-get install -y nginx-light" >&2
	exit 1
fi

SECRET=${DAVKV_SECRET:-}
if [ -z "$SECRET" ] && [ -n "${DAVKV_SECRET_FILE:-}" ]; then
	SECRET=$(cat "$DAVKV_SECRET_FILE")
fi
if [ -n "$SECRET" ] && ! [[ "$SECRET" =~ ^[A-Za-z0-9._~+/=-]{16,}$ ]]; then
	echo "volume.sh: DAVKV_SECRET must be at least 16 characters of letters, digits and -._~+/=" >&2
	exit 2
fi
SIGNREADS=${DAVKV_SIGNREADS:-}
if [ -n "$SIGNREADS" ] && [ "$SIGNREADS" != 0 ] && [ -z "$SECRET" ]; then
	echo "volume.sh: DAVKV_SIGNREADS needs DAVKV_SECRET (or DAVKV_SECRET_FILE)" >&2
	exit 2
fi

TLS_CERT=${DAVKV_TLS_CERT:-} TLS_KEY=${DAVKV_TLS_KEY:-}
if [ -n "$TLS_CERT$TLS_KEY" ] && ! { [ -r "$TLS_CERT" ] && [ -r "$TLS_KEY" ]; }; then
	echo "volume.sh: DAVKV_TLS_CERT and DAVKV_TLS_KEY must both name readable PEM files" >&2
	exit 2
fi

mkdir -p "$1"
DIR=$(cd "$1" && pwd)
CONF="$DIR/.nginx"
mkdir -p "$CONF/body" "$CONF/proxy" "$CONF/fastcgi" "$CONF/uwsgi" "$CONF/scgi"

# Workers must be able to write DIR: as root, run them as root instead of nobody.
USER_LINE=""
if [ "$(id -u)" = 0 ]; then
	USER_LINE="user root root;"
fi

# Who may do what. Without a secret, nothing is checked. With one, $davkv_deny says
# whether a request lacks what it needs: the secret (matched by a case-sensitive regex:
# map matches plain strings ignoring case), or for GET and HEAD with signed reads, a
# valid signature. The config holds the secret, so only its owner may read it.
TLS=""
if [ -n "$TLS_CERT" ]; then
	TLS="ssl_certificate $(realpath "$TLS_CERT");
		ssl_certificate_key $(realpath "$TLS_KEY");
		ssl_protocols TLSv1.2 TLSv1.3;"
fi
ACCESS="" CHECK="" SIGN=""
if [ -n "$SECRET" ]; then
	re=$(printf '%s' "$SECRET" | sed 's/[.+]/[&]/g')
	ACCESS="map \$http_x_davkv_secret \$davkv_has_secret {
		default 0;
		\"~^$re\$\" 1;
	}"
	if [ -n "$SIGNREADS" ] && [ "$SIGNREADS" != 0 ]; then
		ACCESS="$ACCESS
	map \"\$request_method:\$davkv_has_secret:\$secure_link\" \$davkv_deny {
		default 1;
		\"~^[A-Z]+:1:\" 0;
		\"~^(GET|HEAD):0:1\$\" 0;
	}"
		SIGN="secure_link \$arg_st,\$arg_e;
		secure_link_md5 \"\$secure_link_expires\$uri $SECRET\";"
	else
		ACCESS="$ACCESS
	map \"\$request_method:\$davkv_has_secret\" \$davkv_deny {
		default 1;
		\"~^(GET|HEAD):\" 0;
		\"~:1\$\" 0;
	}"
	fi
	CHECK="if (\$davkv_deny) {
				return 403;
			}"
fi

rm -f "$CONF/nginx.conf"
(umask 077 && cat >"$CONF/nginx.conf") <<EOF
# Written by volume.sh; edits are lost at the next start.
$USER_LINE
daemon off;
worker_processes auto;
pid $CONF/nginx.pid;
error_log $CONF/error.log warn;

events {
	worker_connections 1024;
}

http {
	access_log $CONF/access.log combined buffer=64k flush=1s;
	sendfile on;
	tcp_nopush on;
	tcp_nodelay on;
	keepalive_timeout 65;
	keepalive_requests 100000;
	default_type application/octet-stream;
	types {}

	client_body_temp_path $CONF/body 1 2;
	proxy_temp_path $CONF/proxy;
	fastcgi_temp_path $CONF/fastcgi;
	uwsgi_temp_path $CONF/uwsgi;
	scgi_temp_path $CONF/scgi;

	$ACCESS

	server {
		listen ${BIND:+$BIND:}$PORT${TLS_CERT:+ ssl};
		$TLS
		root $DIR;

		client_max_body_size 0;
		client_body_buffer_size 1m;
		$SIGN

		location / {
			$CHECK
			dav_methods PUT DELETE MOVE;
			dav_access user:rw group:r all:r;
			create_full_put_path on;
			autoindex on;
			autoindex_format json;
		}

		location ^~ /.nginx {
			return 403;
		}
	}
}
EOF

exec "$NGINX" -p "$CONF" -c "$CONF/nginx.conf" -e "$CONF/error.log"
