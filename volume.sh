#!/usr/bin/env bash
# volume.sh DIR: run one davkv volume, a stock nginx with the WebDAV module serving DIR,
# in the foreground. Environment:
#   PORT   port to listen on (default 3001)
#   BIND   address to listen on (default: all addresses)
#   NGINX  the nginx binary (default: nginx on PATH, else /usr/sbin/nginx)
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

mkdir -p "$1"
DIR=$(cd "$1" && pwd)
CONF="$DIR/.nginx"
mkdir -p "$CONF/body" "$CONF/proxy" "$CONF/fastcgi" "$CONF/uwsgi" "$CONF/scgi"

# Workers must be able to write DIR: as root, run them as root instead of nobody.
USER_LINE=""
if [ "$(id -u)" = 0 ]; then
	USER_LINE="user root root;"
fi

cat >"$CONF/nginx.conf" <<EOF
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

	server {
		listen ${BIND:+$BIND:}$PORT;
		root $DIR;

		client_max_body_size 0;
		client_body_buffer_size 1m;

		location / {
			dav_methods PUT DELETE;
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
