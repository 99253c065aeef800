#!/usr/bin/env bash
# Start or stop a throwaway PostgreSQL server for the tests and benchmarks.
#   scripts/pg.sh start DIR PORT [ADDRESSES [MAX_CONNECTIONS]]   initdb in DIR (if new) and start on 127.0.0.1:PORT, user
#       "postgres", trust auth; ADDRESSES (comma-separated IPv4) are listened on too, and clients of
#       their /24 trusted (tests/chaos/hosts.py: the root side of its network namespaces' links);
#       MAX_CONNECTIONS defaults to 200
#   scripts/pg.sh stop DIR
# PostgreSQL refuses to run as root; when run as root the server runs as the "postgres" user.
set -euo pipefail
cmd=$1 dir=$2 port=${3:-54329} extra=${4:-} max_connections=${5:-200}
bindir=$(pg_config --bindir 2>/dev/null || ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)

as_pg() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

case $cmd in
start)
    mkdir -p "$dir"
    [ "$(id -u)" = 0 ] && chown postgres "$dir"
    chmod 700 "$dir"
    if [ ! -f "$dir/PG_VERSION" ]; then
        as_pg "$bindir/initdb" -D "$dir" -U postgres -A trust -E UTF8 --no-locale >/dev/null
    fi
    listen=127.0.0.1
    for address in ${extra//,/ }; do
        listen="$listen,$address"
        subnet="${address%.*}.0/24"
        grep -q "^host all all $subnet trust" "$dir/pg_hba.conf" ||
            echo "host all all $subnet trust" >>"$dir/pg_hba.conf"
    done
    as_pg "$bindir/pg_ctl" -D "$dir" -l "$dir/server.log" -w -t 60 \
        -o "-p $port -k $dir -c listen_addresses=$listen -c max_connections=$max_connections -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
        start >/dev/null
    echo "PostgreSQL on $listen port $port (data in $dir)"
    ;;
stop)
    [ -f "$dir/postmaster.pid" ] && as_pg "$bindir/pg_ctl" -D "$dir" -m fast -w stop >/dev/null
    ;;
*)
    echo "usage: $0 start|stop DIR [PORT]" >&2
    exit 2
    ;;
esac
