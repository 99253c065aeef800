#!/usr/bin/env bash
# `make test`: lint, the whole suite on SQLite and PostgreSQL, on Django 5.2 (Python 3.11+) and on
# Django 6.x (Python 3.12+, where such an interpreter exists), on MariaDB with Django 5.2, the
# PostgreSQL suite once more through psycopg2 instead of psycopg 3, then the built wheel in a fresh
# venv. Starts throwaway PostgreSQL and MariaDB servers (as the postgres and mysql users when run as
# root) and stops them again.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
VENVS=$ROOT/.venv
mkdir -p "$VENVS" artifacts

find_python() {  # find_python MIN_MINOR: a python3 of at least 3.MIN_MINOR, or nothing
    local min=$1 candidate
    for candidate in "python3.$min" "$(pyenv prefix "3.$min" 2>/dev/null | head -n 1)/bin/python3" \
        python3.13 python3.12 python3; do
        if command -v "$candidate" >/dev/null 2>&1 &&
            "$candidate" -c "import sys; sys.exit(sys.version_info < (3, $min))" 2>/dev/null; then
            command -v "$candidate"
            return
        fi
    done
}

# MariaDB: the server, and what mysqlclient builds with (Debian's packages; it has no Linux wheels).
have_mariadb() {
    command -v mariadb-install-db >/dev/null 2>&1 && command -v cc >/dev/null 2>&1 &&
        pkg-config --exists libmariadb 2>/dev/null
}
if ! have_mariadb && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "== installing: MariaDB (mariadb-server libmariadb-dev pkg-config gcc)"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        mariadb-server libmariadb-dev pkg-config gcc >/dev/null; } || true
fi
# faketime runs workers whose clocks are wrong (tests/test_db.py; they skip without it).
if ! command -v faketime >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    { apt-get update -qq && apt-get install -y -qq faketime >/dev/null; } || echo "== no faketime: clock tests skip"
fi
EXTRAS=test,lint
if have_mariadb; then
    EXTRAS=test,lint,mysql
else
    echo "== no MariaDB (apt-get install mariadb-server libmariadb-dev pkg-config gcc): not tested on it"
fi

make_venv() {  # make_venv NAME PYTHON DJANGO_SPEC EXTRA...
    local venv=$VENVS/$1 python=$2 django=$3
    shift 3
    [ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
    "$venv/bin/python" -m pip install -q --upgrade pip >/dev/null
    "$venv/bin/python" -m pip install -q -e ".[$EXTRAS]" "$django" "$@"
}

PY311=$(find_python 11)
PY312=$(find_python 12)
[ -n "$PY311" ] || { echo "make test needs Python 3.11 or newer" >&2; exit 1; }

echo "== installing: Django 5.2 on $("$PY311" --version)"
make_venv dj52 "$PY311" "Django>=5.2,<5.3" "django-tasks>=0.7"
if [ -n "$PY312" ]; then
    echo "== installing: Django 6.x on $("$PY312" --version)"
    make_venv dj6 "$PY312" "Django>=6.0,<7"
else
    echo "== no Python 3.12+ here: Django 6.x is not tested"
fi
echo "== installing: Django 5.2 with psycopg2 (psycopg 3 removed, so Django uses psycopg2)"
make_venv dj52-psycopg2 "$PY311" "Django>=5.2,<5.3" "django-tasks>=0.7" psycopg2-binary
"$VENVS/dj52-psycopg2/bin/python" -m pip uninstall -q -y psycopg psycopg-binary

# The browser tests drive Debian's Chromium: install it when we can (best effort; they skip without it).
if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; } || echo "== no Chromium: browser tests skip"
fi

echo "== lint"
"$VENVS/dj52/bin/ruff" check .
"$VENVS/dj52/bin/ruff" format --check .
"$VENVS/dj52/bin/mypy"

PGDATA_DIR=$(mktemp -d /tmp/dsq-test-pg.XXXXXX)
PGPORT_FREE=$("$PY311" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
MYDATA_DIR=$(mktemp -d /tmp/dsq-test-mariadb.XXXXXX)
cleanup() {
    bash scripts/pg.sh stop "$PGDATA_DIR" || true
    bash scripts/mariadb.sh stop "$MYDATA_DIR" || true
    rm -rf "$PGDATA_DIR" "$MYDATA_DIR"
}
trap cleanup EXIT
bash scripts/pg.sh start "$PGDATA_DIR" "$PGPORT_FREE"
export PGHOST=127.0.0.1 PGPORT=$PGPORT_FREE PGUSER=postgres PGDATABASE=dsq DSQ_PGDATA=$PGDATA_DIR
MARIADB=
if [ "$EXTRAS" = test,lint,mysql ]; then
    MYPORT_FREE=$("$PY311" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    bash scripts/mariadb.sh start "$MYDATA_DIR" "$MYPORT_FREE"
    export MYSQL_HOST=127.0.0.1 MYSQL_PORT=$MYPORT_FREE MYSQL_USER=root MYSQL_DATABASE=dsq
    MARIADB=mariadb
fi
# tests/test_pgdriver.py checks that each PostgreSQL run uses the driver it is meant to.
export DSQ_EXPECT_DRIVER=psycopg

status=0
pytest_in() {  # pytest_in VENV ARGS...: one pytest run; "no tests collected" (a narrowed run) is fine
    local venv=$1 code=0
    shift
    "$VENVS/$venv/bin/python" "$@" || code=$?
    [ "$code" = 0 ] || [ "$code" = 5 ] || status=1
}
# Tests run in parallel (pytest-xdist), except the chaos suite (marked slow, about 2 minutes): it
# races processes against each other and restarts the database server, so it runs alone.
PARALLEL=(-n auto --maxprocesses 4 -m "not slow")
for venv in dj52 dj6; do
    [ -x "$VENVS/$venv/bin/python" ] || continue
    [ "$venv" = dj6 ] && [ -z "$PY312" ] && continue
    dbs=(sqlite postgres)
    # MariaDB on one Django: the queue's SQL there is the ORM's, which Django tests on both.
    [ "$venv" = dj52 ] && [ -n "$MARIADB" ] && dbs+=(mariadb)
    for db in "${dbs[@]}"; do
        echo "== tests: $venv on $db"
        export DSQ_TEST_DB=$db
        if [ "$venv/$db" = dj52/postgres ]; then
            # One run measures branch coverage, worker processes and their children included,
            # and runs the chaos suite; it tests processes and PostgreSQL, not Django. The suite
            # runs once more through psycopg2 (measured too: pgdriver has a branch per driver).
            rm -f artifacts/.coverage*
            pytest_in "$venv" -m coverage run -m pytest -q "${PARALLEL[@]}" "$@"
            pytest_in "$venv" -m coverage run -m pytest -q -m slow "$@"
            echo "== tests: dj52-psycopg2 on postgres"
            DSQ_EXPECT_DRIVER=psycopg2 pytest_in dj52-psycopg2 -m coverage run -m pytest -q "${PARALLEL[@]}" "$@"
            "$VENVS/$venv/bin/python" -m coverage combine -q
            "$VENVS/$venv/bin/python" -m coverage report >artifacts/coverage.txt || status=1
            echo "branch coverage: $("$VENVS/$venv/bin/python" -m coverage report --format=total)% (floor in pyproject.toml; per file in artifacts/coverage.txt)"
        else
            pytest_in "$venv" -m pytest -q "${PARALLEL[@]}" "$@"
        fi
    done
done

echo "== the built wheel in a fresh virtualenv"
bash scripts/wheel_check.sh "$PY311" || status=1
exit $status
