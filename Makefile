.PHONY: help demo test soak lint wheel-check clean

help:
	@echo "make demo   - run the demo site and a worker on http://127.0.0.1:8000 (Ctrl-C stops both)"
	@echo "make test   - lint + the whole suite on SQLite and PostgreSQL (Django 5.2 and 6.x) and MariaDB (5.2)"
	@echo "make soak   - the chaos suite at soak size (slow)"

demo:
	bash scripts/demo.sh

test:
	bash scripts/test.sh

soak:
	DSQ_SOAK=1 bash scripts/test.sh tests/chaos

lint:
	.venv/dj52/bin/ruff check . && .venv/dj52/bin/ruff format --check . && .venv/dj52/bin/mypy

wheel-check:
	bash scripts/wheel_check.sh python3

clean:
	rm -rf .venv build dist *.egg-info artifacts
