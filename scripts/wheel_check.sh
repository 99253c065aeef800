#!/usr/bin/env bash
# Build the wheel, install it (not the source tree) in a fresh virtualenv, follow the original
# README's set-up steps in a new Django project, run a task with the worker and read its status page.
set -euo pipefail
PYTHON=${1:-python3}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d /tmp/dsq-wheel.XXXXXX)
server=""
trap '[ -n "$server" ] && kill "$server" 2>/dev/null; [ -n "${KEEP:-}" ] || rm -rf "$WORK"' EXIT

"$PYTHON" -m venv "$WORK/venv"
PY=$WORK/venv/bin/python
"$PY" -m pip install -q --upgrade pip >/dev/null
"$PY" -m pip wheel -q --no-deps -w "$WORK/dist" "$ROOT"
WHEEL=$(ls "$WORK"/dist/django_simple_queue-*.whl)
for member in django_simple_queue/templates/django_simple_queue/task_status.html \
    django_simple_queue/templates/admin/django_simple_queue/task/change_list.html \
    django_simple_queue/static/django_simple_queue/admin/admin.css \
    django_simple_queue/migrations/0001_initial.py \
    django_simple_queue/migrations/0002_task_error_task_log_task_worker_pid.py; do
    "$PY" -c "import sys, zipfile; sys.exit('$member' not in zipfile.ZipFile('$WHEEL').namelist())" ||
        { echo "wheel lacks $member" >&2; exit 1; }
done
"$PY" -m pip install -q "$WHEEL" "Django>=5.2,<5.3"

cd "$WORK"
"$WORK/venv/bin/django-admin" startproject mysite
cd mysite
# The original README's set-up: the app in INSTALLED_APPS, its URLs, the migrations.
echo 'INSTALLED_APPS += ["django_simple_queue"]' >> mysite/settings.py
printf '%s\n' 'from django.urls import include' \
    'urlpatterns += [path("django_simple_queue/", include("django_simple_queue.urls"))]' >> mysite/urls.py
cat > mysite/jobs.py <<'PY'
def greet(name):
    return f"Hello, {name}!"
PY
echo 'DJANGO_SIMPLE_QUEUE_ALLOWED_TASKS = {"mysite.jobs.greet"}' >> mysite/settings.py
"$PY" manage.py migrate -v 0
TASK_ID=$("$PY" manage.py shell -v 0 -c 'from django_simple_queue.utils import create_task; print(create_task("mysite.jobs.greet", {"name": "wheel"}))')
"$PY" manage.py task_worker --burst -v 0

PORT=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$PY" manage.py runserver "127.0.0.1:$PORT" --noreload >"$WORK/server.log" 2>&1 &
server=$!
for _ in $(seq 50); do
    curl -fs "http://127.0.0.1:$PORT/django_simple_queue/task?task_id=$TASK_ID&type=json" >"$WORK/status.json" 2>/dev/null && break
    sleep 0.2
done
"$PY" - "$WORK/status.json" <<'PY'
import json, sys
data = json.load(open(sys.argv[1]))
assert data["status"] == "Completed", data
assert data["output"] == "Hello, wheel!", data
PY
curl -fs "http://127.0.0.1:$PORT/django_simple_queue/task?task_id=$TASK_ID" | grep -q "Hello, wheel!"
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/django_simple_queue/task?task_id=nope")
[ "$code" = 400 ] || { echo "malformed id answered $code" >&2; exit 1; }
echo "wheel check passed: $(basename "$WHEEL") installs, migrates, runs a task and serves its status page"
