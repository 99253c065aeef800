#!/usr/bin/env bash
# Run the original django-simple-queue's own test suite against this package.
#   scripts/upstream_suite.sh CHECKOUT [PYTHON]
# CHECKOUT is a checkout of https://github.com/d3banjan/django-simple-queue (its tests.py,
# test_tasks.py and runtests.py, SQLite). Their code is not part of this repository: the suite runs
# in a temporary copy of our package with their two test modules added.
set -euo pipefail
checkout=$(cd "$1" && pwd) python=${2:-python3}
case $python in */*) python=$(cd "$(dirname "$python")" && pwd)/$(basename "$python") ;; esac
here=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/dsq-upstream.XXXXXX)
trap 'rm -rf "$work"' EXIT
cp -r "$here/django_simple_queue" "$work/"
cp "$checkout/django_simple_queue/tests.py" "$checkout/django_simple_queue/test_tasks.py" \
    "$work/django_simple_queue/"
cp "$checkout/runtests.py" "$work/"
cd "$work"
"$python" runtests.py
