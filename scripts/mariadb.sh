#!/usr/bin/env bash
# Start or stop a throwaway MariaDB server for the tests.
#   scripts/mariadb.sh start DIR PORT   install a data directory in DIR (if new) and start on
#                                       127.0.0.1:PORT; user "root" without a password, over TCP
#   scripts/mariadb.sh stop DIR
# mariadbd refuses to run as root; when run as root the server runs as the "mysql" user.
# Durability is traded for speed (no doublewrite, no flush at commit): the data is thrown away.
set -euo pipefail
cmd=$1 dir=$2 port=${3:-33069}
mariadbd=$(command -v mariadbd || echo /usr/sbin/mariadbd)  # /usr/sbin is not on every PATH

as_mysql() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u mysql -- "$@"
    else
        "$@"
    fi
}

case $cmd in
start)
    mkdir -p "$dir"
    [ "$(id -u)" = 0 ] && chown mysql "$dir"
    chmod 700 "$dir"
    if [ ! -d "$dir/data/mysql" ]; then
        # --auth-root-authentication-method=normal: root logs in with no password, also over TCP.
        as_mysql mariadb-install-db --no-defaults --datadir="$dir/data" \
            --auth-root-authentication-method=normal --skip-test-db >"$dir/install.log" 2>&1 ||
            { cat "$dir/install.log" >&2; exit 1; }
    fi
    # --no-defaults: nothing from /etc/mysql (a system server's port, socket or data directory).
    as_mysql "$mariadbd" --no-defaults --datadir="$dir/data" --socket="$dir/mysqld.sock" \
        --pid-file="$dir/mysqld.pid" --log-error="$dir/server.log" \
        --port="$port" --bind-address=127.0.0.1 --skip-name-resolve \
        --character-set-server=utf8mb4 --collation-server=utf8mb4_unicode_ci \
        --max-connections=200 --innodb-buffer-pool-size=128M --innodb-log-file-size=64M \
        --innodb-flush-log-at-trx-commit=0 --innodb-doublewrite=0 --sync-binlog=0 \
        --innodb-flush-method=nosync --skip-log-bin \
        >/dev/null 2>&1 &
    for _ in $(seq 1 300); do
        if mariadb-admin --no-defaults --socket="$dir/mysqld.sock" -u root ping >/dev/null 2>&1; then
            echo "MariaDB on 127.0.0.1:$port (data in $dir)"
            exit 0
        fi
        sleep 0.2
    done
    echo "MariaDB did not start; its log:" >&2
    cat "$dir/server.log" >&2 || true
    exit 1
    ;;
stop)
    if [ -S "$dir/mysqld.sock" ]; then
        mariadb-admin --no-defaults --socket="$dir/mysqld.sock" -u root shutdown >/dev/null 2>&1 || true
    fi
    # shutdown returns once the server has stopped; wait for the pid file to go all the same.
    for _ in $(seq 1 100); do
        [ -f "$dir/mysqld.pid" ] || exit 0
        sleep 0.1
    done
    ;;
*)
    echo "usage: $0 start|stop DIR [PORT]" >&2
    exit 2
    ;;
esac
