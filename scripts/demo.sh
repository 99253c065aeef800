#!/usr/bin/env bash
# `make demo`: a virtualenv with the package, the demo database, then a worker and the web server
# together on http://127.0.0.1:$PORT (default 8000). Ctrl-C stops both.
#
#   PORT=8001 make demo                        another port
#   DATABASE_URL=postgres://u:p@host/db make demo   PostgreSQL instead of demo.sqlite3
#   DEMO_PYTHON=/path/to/python bash scripts/demo.sh  use that interpreter, no virtualenv (tests)
set -euo pipefail
cd "$(dirname "$0")/.."

PORT="${PORT:-8000}"
VENV=.venv/demo

if [ -n "${DEMO_PYTHON:-}" ]; then
    PY="$DEMO_PYTHON"
else
    PY="$VENV/bin/python"
    BASE="${PYTHON:-python3}"
    if [ ! -x "$PY" ]; then
        if ! "$BASE" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
            echo "The demo needs Python 3.11 or newer; '$BASE' is $("$BASE" -V 2>&1 || echo missing)." >&2
            echo "Run it with another interpreter: PYTHON=python3.12 make demo" >&2
            exit 1
        fi
        echo "Creating $VENV ..."
        "$BASE" -m venv "$VENV"
    fi
    EXTRAS=admin
    case "${DATABASE_URL:-}" in postgres*|pgsql*) EXTRAS=admin,postgres ;; esac
    STAMP="$VENV/.installed-$EXTRAS"
    # Install again when the package's dependencies changed since the last install.
    if [ ! -f "$STAMP" ] || [ setup.cfg -nt "$STAMP" ]; then
        echo "Installing django-simple-queue[$EXTRAS] into $VENV ..."
        "$PY" -m pip install --quiet --disable-pip-version-check -e ".[$EXTRAS]"
        touch "$STAMP"
    fi
fi

echo "Migrating the demo database ..."
"$PY" manage.py migrate --noinput --verbosity 0
"$PY" manage.py demo_setup

# SQLite lets one process write at a time: its worker runs one task at a time (more would make
# the worker warn, system check W006); PostgreSQL runs two.
CONCURRENCY=1
case "${DATABASE_URL:-}" in postgres*|pgsql*) CONCURRENCY=2 ;; esac

# Each of the two gets a process group of its own, so that stopping one stops its children too
# (the runserver reloader, the worker's pool).
set -m
DJANGO_SETTINGS_MODULE=sample_site.task_worker_settings "$PY" manage.py task_worker --concurrency "$CONCURRENCY" </dev/null &
WORKER=$!
"$PY" manage.py runserver "127.0.0.1:$PORT" </dev/null &
WEB=$!

stop() {
    trap - INT TERM EXIT
    echo
    echo "Stopping the web server and the worker ..."
    # The worker itself (not its pool) gets SIGTERM: it lets running tasks finish (up to
    # DJANGO_SIMPLE_QUEUE_SHUTDOWN_GRACE), puts back what is left and stops its children.
    kill -TERM "$WORKER" 2>/dev/null || true
    kill -TERM -- "-$WEB" 2>/dev/null || true
    for _ in $(seq 100); do
        kill -0 -- "-$WEB" 2>/dev/null || kill -0 -- "-$WORKER" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL -- "-$WEB" "-$WORKER" 2>/dev/null || true
    wait 2>/dev/null || true
    echo "Stopped."
}
trap 'stop; exit 0' INT TERM
trap 'stop' EXIT

cat <<BANNER

  Demo site:   http://127.0.0.1:$PORT/
  Admin:       http://127.0.0.1:$PORT/admin/   (user admin, password admin)
  Worker:      manage.py task_worker with sample_site.task_worker_settings
  Ctrl-C stops both.

BANNER

# Either one exiting on its own ends the demo (and stops the other, through the EXIT trap).
# A polling loop rather than `wait -n`, which the bash 3.2 of macOS lacks.
while kill -0 "$WEB" 2>/dev/null && kill -0 "$WORKER" 2>/dev/null; do
    sleep 1
done
if ! kill -0 "$WEB" 2>/dev/null; then
    echo "The web server exited (is port $PORT in use? Try PORT=8001 make demo)." >&2
else
    echo "The worker exited." >&2
fi
exit 1
