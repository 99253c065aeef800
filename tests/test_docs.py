"""The documentation is tested: every example runs, every command parses, every setting exists.

Conventions of the pages in docs/ (and README.md):

- A ```python block whose first line is ``# path/to/module.py`` is a file of the reader's project:
  it is written to a temporary project and imported. ``settings.py`` blocks are fragments of
  settings, ``urls.py`` blocks fragments of a URLconf, ``*task_worker_settings.py`` the lean
  worker settings module.
- Every other ```python block of a page runs, in order and in one namespace, against the test
  database, with the page's settings fragments applied; then a real worker runs what they queued.
- Every ``python manage.py …`` command in any block is parsed by that command's own parser, and
  every ``make`` target exists in the Makefile.
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import importlib
import io
import json
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.core.checks import ERROR
from django.core.management import get_commands, load_command_class
from django.db import connections
from django.urls import resolve

from django_simple_queue import conf, signals
from django_simple_queue.checks import check_settings
from django_simple_queue.health import health_report
from django_simple_queue.models import Batch, Dependency, Task
from django_simple_queue.views import public_dict
from tests.conftest import ROOT, run_python, worker_env
from tests.factories import TaskFactory

DOCS = ROOT / "docs"
PAGES = sorted(DOCS.glob("*.md"))
ALL_TEXTS = [*PAGES, ROOT / "README.md"]
FENCE = re.compile(
    r"^(?P<indent>[ ]*)```(?P<lang>[\w-]*)[ ]*\n(?P<body>.*?)^(?P=indent)```[ ]*$", re.M | re.S
)
# Pages written with their own issues (reliability, performance), linked before they land.
WRITTEN_ELSEWHERE = {"reliability.md", "performance.md"}
# Sections of other pages written with their own issues, linked before they land (the admin's
# batches, issue 19): remove once the section is there.
FILE_LINE = re.compile(r"^# ([\w/]+\.py)\s*$")
# Names in the examples that stand for the reader's project, and what the tests use instead.
PLACEHOLDERS = {"<project>": "mysite", "<uuid>": "00000000-0000-0000-0000-000000000000"}
# Failures that mean an example is wrong, not that its task failed on purpose.
EXAMPLE_BUGS = (
    "InvalidTask",
    "TaskNotAllowed",
    "ImportError",
    "TypeError",
    "NameError",
    "AttributeError",
)


@dataclass
class Block:
    page: Path
    lang: str
    body: str
    line: int

    @property
    def path(self) -> str | None:
        match = FILE_LINE.match(self.body.splitlines()[0]) if self.body.strip() else None
        return match.group(1) if match else None

    @property
    def kind(self) -> str:
        path = self.path
        if self.lang != "python":
            return self.lang
        if path is None:
            return self._guess()
        name = path.rsplit("/", 1)[-1]
        if name == "settings.py":
            return "settings"
        if name == "urls.py":
            return "urls"
        if name.endswith("task_worker_settings.py"):
            return "lean"
        return "module"

    def _guess(self) -> str:
        """A block without a file line: a URL pattern, settings assignments, or a snippet."""
        if self.body.lstrip().startswith("path("):
            return "urls"
        statements = ast.parse(self.body).body
        if statements and all(
            isinstance(node, ast.Assign | ast.AugAssign)
            and all(
                isinstance(target, ast.Name) and target.id.isupper()
                for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
            )
            for node in statements
        ):
            return "settings"
        return "snippet"

    def __str__(self) -> str:
        return f"{self.page.name}:{self.line}"


def blocks(page: Path) -> list[Block]:
    text = page.read_text()
    found = []
    for match in FENCE.finditer(text):
        indent = len(match.group("indent"))
        body = "\n".join(line[indent:] for line in match.group("body").splitlines()) + "\n"
        found.append(Block(page, match.group("lang"), body, text.count("\n", 0, match.start()) + 1))
    return found


def all_blocks(kind: str | None = None, pages: list[Path] = ALL_TEXTS) -> list[Block]:
    return [b for page in pages for b in blocks(page) if kind is None or b.kind == kind]


def test_the_docs_exist_and_are_linked_from_readme_and_index():
    names = {
        "index.md", "quickstart.md", "tasks.md", "tasks-api.md", "worker.md", "admin.md",
        "status-page.md", "signals.md", "settings.md", "deployment.md", "upgrading.md",
        "security.md",
    }  # fmt: skip
    assert names <= {page.name for page in PAGES}
    readme = (ROOT / "README.md").read_text()
    index = (DOCS / "index.md").read_text()
    more = [
        "reliability.md",
        "performance.md",
        "architecture.md",
        "schedules.md",
        "queues.md",
        "observability.md",
        "workflows.md",
    ]
    for name in [*names, *more]:
        if name != "index.md":
            assert f"({name})" in index, name
            assert f"(docs/{name})" in readme, name


def test_readme_set_up_has_what_a_new_project_needs_and_the_quickstarts_sqlite_options():
    readme = (ROOT / "README.md").read_text()
    set_up = readme[readme.index("## Set up") : readme.index("## Usage")]
    assert 'pip install "django-simple-queue[admin]"' in set_up
    assert "createsuperuser" in set_up
    options = re.compile(r'"OPTIONS": \{[^}]*\}')
    quickstart = (DOCS / "quickstart.md").read_text()
    assert options.findall(set_up) == options.findall(quickstart) != []


# -- links ---------------------------------------------------------------------------------


def slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = FENCE.sub("", page.read_text())
    return {slug(m.group(1)) for m in re.finditer(r"^#+ (.+)$", text, re.M)}


@pytest.mark.parametrize("page", ALL_TEXTS, ids=lambda p: p.name)
def test_relative_links_and_anchors_exist(page):
    text = FENCE.sub("", page.read_text())
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"\w+:", target):
            continue
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        if linked.suffix == ".png" and not (DOCS / "images").is_dir():
            continue  # the screenshots are produced by the browser tests
        if linked.name in WRITTEN_ELSEWHERE and not linked.exists():
            continue
        assert linked.exists(), f"{page.name} links to {target}"
        if anchor:
            assert anchor in anchors(linked), f"{page.name} links to a missing anchor {target}"


# -- settings --------------------------------------------------------------------------------


def settings_table() -> dict[str, Any]:
    text = (DOCS / "settings.md").read_text()
    rows = re.findall(r"^\| `DJANGO_SIMPLE_QUEUE_(\w+)` \| `([^`]+)` \|", text, re.M)
    return {name: ast.literal_eval(default) for name, default in rows}


def test_every_setting_is_documented_with_its_default_and_nothing_else():
    documented = settings_table()
    assert set(documented) == set(conf.DEFAULTS)
    for name, default in conf.DEFAULTS.items():
        assert documented[name] == default, name
        assert type(documented[name]) is type(default) or isinstance(default, frozenset), name


def test_every_setting_in_any_page_exists():
    for page in ALL_TEXTS:
        for name in re.findall(r"DJANGO_SIMPLE_QUEUE_([A-Z_]+[A-Z])", page.read_text()):
            assert name in conf.DEFAULTS, f"{page.name} mentions DJANGO_SIMPLE_QUEUE_{name}"


def test_every_check_id_is_documented_in_settings():
    from django_simple_queue import checks

    text = (DOCS / "settings.md").read_text()
    for check_id in re.findall(r"\| ([EW]\d{3}) \|", checks.__doc__ or ""):
        assert f"`django_simple_queue.{check_id}`" in text, check_id


def run_settings_fragment(block: Block) -> dict[str, Any]:
    """Execute a settings fragment on top of the test settings; return what it assigned."""
    import tests.settings as base

    namespace = {k: v for k, v in vars(base).items() if k.isupper()}
    namespace = json.loads(json.dumps(namespace, default=repr)) | {
        k: v for k, v in vars(base).items() if k.isupper()
    }
    before = {k: repr(v) for k, v in namespace.items()}
    exec(compile(block.body, str(block), "exec"), namespace)
    return {k: v for k, v in namespace.items() if k.isupper() and repr(v) != before.get(k)}


APPLIED = ("DJANGO_SIMPLE_QUEUE_", "TASKS", "SILENCED_SYSTEM_CHECKS")


def apply(settings: Any, assigned: dict[str, Any]) -> None:
    for name, value in assigned.items():
        if name.startswith(APPLIED):
            setattr(settings, name, value)


@pytest.mark.parametrize("block", all_blocks("settings"), ids=str)
def test_settings_fragments_are_valid_settings(block, settings, tmp_path, monkeypatch):
    packages = {n.split(".")[0] for n in write_project(tmp_path, project_modules(block.page))}
    monkeypatch.syspath_prepend(str(tmp_path))
    forget(packages)
    assigned = run_settings_fragment(block)
    assert assigned, f"{block} assigns nothing"
    for name in assigned:
        if name.startswith("DJANGO_SIMPLE_QUEUE_"):
            assert name.removeprefix("DJANGO_SIMPLE_QUEUE_") in conf.DEFAULTS, name
    if "INSTALLED_APPS" in assigned:
        assert "django_simple_queue" in assigned["INSTALLED_APPS"]
    apply(settings, assigned)
    if "DJANGO_SIMPLE_QUEUE_ALLOWED_TASKS" in assigned:
        # The examples' tasks live in the pages' own modules, tested with each page below.
        settings.SILENCED_SYSTEM_CHECKS = [
            *settings.SILENCED_SYSTEM_CHECKS,
            "django_simple_queue.W002",
        ]
    errors = [m for m in check_settings() if m.level >= ERROR]
    if "DATABASES" in assigned:
        # The test's own databases stay: E008's rule is checked against the fragment's instead.
        alias = assigned.get("DJANGO_SIMPLE_QUEUE_DATABASE", "default")
        assert alias in assigned["DATABASES"], f"{block}: no database {alias!r}"
        errors = [m for m in errors if m.id != "django_simple_queue.E008"]
    forget(packages)
    assert errors == [], f"{block}: {errors}"


@pytest.mark.parametrize("block", all_blocks("urls"), ids=str)
def test_urls_fragments_route_the_status_page(block, tmp_path, monkeypatch):
    name = f"docs_urls_{block.page.stem.replace('-', '_')}_{block.line}"
    body = block.body
    if "urlpatterns" not in body:  # one line to add to the project's urlpatterns
        body = f"from django.urls import include, path\nurlpatterns = [\n{body}]\n"
    (tmp_path / f"{name}.py").write_text(body)
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module(name)
    assert resolve("/django_simple_queue/task", urlconf=module).url_name == "task"
    assert resolve("/django_simple_queue/health", urlconf=module).url_name == "health"


# -- commands ---------------------------------------------------------------------------------


def manage_commands() -> Iterator[tuple[str, list[str]]]:
    """(where, argv) of every ``manage.py`` command in the docs' code blocks and inline code."""
    for page in ALL_TEXTS:
        # ```text blocks show output (console lines, banners), not commands to type.
        text = FENCE.sub(
            lambda m: "" if m.group("lang") == "text" else m.group(0), page.read_text()
        )
        for argv in re.findall(r"\[([^\[\]]*\"manage\.py\"[^\[\]]*)\]", text):
            yield page.name, json.loads(f"[{argv}]")[2:]
        for line in text.splitlines():
            for match in re.finditer(r"(?:manage\.py|-m django) ([^`|;&#\n]*)", line):
                command = match.group(1)
                for placeholder, value in PLACEHOLDERS.items():
                    command = command.replace(placeholder, value)
                command = command.replace("[", "").replace("]", "")
                if command.strip().startswith('"'):
                    continue  # the JSON form, handled above
                yield page.name, shlex.split(command)


COMMANDS = list(manage_commands())


def test_the_docs_show_commands():
    names = {argv[0] for _, argv in COMMANDS}
    assert {"task_worker", "task_prune", "migrate"} <= names


@pytest.mark.parametrize(
    ("where", "argv"), COMMANDS, ids=[f"{w}:{' '.join(a)}" for w, a in COMMANDS]
)
def test_every_manage_py_command_parses(where, argv):
    name, args = argv[0], argv[1:]
    commands = get_commands()
    assert name in commands, f"{where}: no command {name}"
    command = load_command_class(commands[name], name)
    parser = command.create_parser("manage.py", name)
    parser.parse_args(args)  # raises CommandError for an unknown option or a bad value


def option_strings(name: str) -> set[str]:
    command = load_command_class(get_commands()[name], name)
    parser = command.create_parser("manage.py", name)
    return {option for action in parser._actions for option in action.option_strings}


def own_options(name: str) -> set[str]:
    from django.core.management.base import BaseCommand

    base = {
        o for a in BaseCommand().create_parser("manage.py", "x")._actions for o in a.option_strings
    }
    base.add("--skip-checks")
    return {o for o in option_strings(name) if o not in base and o.startswith("--")} - {"--help"}


def test_worker_page_documents_every_option_of_both_commands():
    text = (DOCS / "worker.md").read_text()
    for name in ("task_worker", "task_prune"):
        for option in own_options(name):
            assert f"`{option}" in text, f"{option} of {name} is not in worker.md"
    documented = set(re.findall(r"^\| `(--[\w-]+)", text, re.M))
    assert documented <= option_strings("task_worker") | option_strings("task_prune")


def test_make_targets_exist():
    makefile = (ROOT / "Makefile").read_text()
    targets = set(re.findall(r"^([\w-]+):", makefile, re.M))
    used = {t for page in ALL_TEXTS for t in re.findall(r"^make ([\w-]+)", page.read_text(), re.M)}
    assert used, "the docs show make commands"
    assert used <= targets, f"missing make targets: {used - targets}"


def test_systemd_unit_waits_longer_than_the_grace():
    (unit,) = all_blocks("ini", [DOCS / "worker.md"])
    timeout = int(re.search(r"^TimeoutStopSec=(\d+)$", unit.body, re.M).group(1))
    assert timeout > conf.DEFAULTS["SHUTDOWN_GRACE"]
    assert "KillSignal=SIGTERM" in unit.body


# -- JSON shapes --------------------------------------------------------------------------------


def table_keys(page: str, heading: str) -> list[str]:
    text = (DOCS / page).read_text()
    section = text.split(heading, 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^\| `(\w+)` \|", section, re.M)


@pytest.mark.django_db
def test_status_page_json_keys_are_the_documented_ones():
    documented = table_keys("status-page.md", "## The JSON keys")
    assert set(documented) == set(public_dict(TaskFactory()))
    assert len(documented) == len(set(documented))


@pytest.mark.django_db
def test_health_example_and_table_match_the_report():
    report = health_report()
    (example,) = [json.loads(b.body) for b in all_blocks("json", [DOCS / "deployment.md"])]
    assert set(example) == set(report)
    assert set(table_keys("deployment.md", "**The health endpoint**")) == set(report)
    TaskFactory(running=True, worker_id="a:1")
    TaskFactory()
    report = health_report()
    assert set(example["queues"][0]) == set(report["queues"][0])
    assert set(example["workers"][0]) == set(report["workers"][0])


# -- examples that run -----------------------------------------------------------------------------

RUNNABLE = [
    page for page in ALL_TEXTS if any(b.kind in ("snippet", "module") for b in blocks(page))
]


def write_project(root: Path, modules: list[Block]) -> list[str]:
    """Write the page's module blocks as files; return their dotted names."""
    names = []
    for block in modules:
        assert block.path is not None
        path = root / block.path
        path.parent.mkdir(parents=True, exist_ok=True)
        for parent in path.relative_to(root).parents:
            init = root / parent / "__init__.py"
            if parent != Path(".") and not init.exists():
                init.write_text("")
        path.write_text(block.body)
        names.append(block.path.removesuffix(".py").replace("/", "."))
    return names


def project_modules(page: Path) -> list[Block]:
    """The page's module blocks, on top of the quickstart's (``myapp.tasks.send_report``)."""
    modules = {b.path: b for b in blocks(DOCS / "quickstart.md") if b.kind == "module"}
    modules |= {b.path: b for b in blocks(page) if b.kind == "module"}
    return list(modules.values())


def forget(packages: set[str]) -> None:
    for name in list(sys.modules):
        if name.split(".")[0] in packages:
            del sys.modules[name]
    for signal in (signals.before_job, signals.on_success, signals.on_failure,
                   signals.before_loop, signals.after_loop):  # fmt: skip
        for receiver in list(signal.receivers):
            func = receiver[1]() if callable(receiver[1]) else receiver[1]
            if getattr(func, "__module__", "").split(".")[0] in packages:
                signal.disconnect(func, sender=Task)


def settings_module(root: Path, assigned: dict[str, Any]) -> str:
    lines = ["from tests.settings import *"]
    lines += [f"{name} = {value!r}" for name, value in assigned.items() if name.startswith(APPLIED)]
    (root / "docs_settings.py").write_text("\n".join(lines) + "\n")
    return "docs_settings"


@pytest.mark.parametrize("page", RUNNABLE, ids=lambda p: p.name)
def test_page_examples_run(page, tmp_path, settings, monkeypatch, transactional_db):
    page_blocks = blocks(page)
    modules = project_modules(page)
    names = write_project(tmp_path, modules)
    packages = {name.split(".")[0] for name in names}
    assigned: dict[str, Any] = {"DJANGO_SIMPLE_QUEUE_ALLOWED_TASKS": None}
    for block in page_blocks:
        if block.kind == "settings":
            assigned |= run_settings_fragment(block)
    monkeypatch.syspath_prepend(str(tmp_path))
    forget(packages)
    apply(settings, assigned)
    try:
        for name in names:
            importlib.import_module(name)
        namespace: dict[str, Any] = {"__name__": "docs_example"}
        output = io.StringIO()
        for block in page_blocks:
            if block.kind == "snippet":
                with contextlib.redirect_stdout(output):
                    exec(compile(block.body, str(block), "exec"), namespace)
        # Close what sync_to_async's thread opened (the async examples), before the worker runs.
        asyncio.run(sync_to_async(connections.close_all)())
        if Task.objects.exists():
            run_queued_tasks(tmp_path, assigned)
    finally:
        forget(packages)


def run_queued_tasks(root: Path, assigned: dict[str, Any]) -> None:
    """Run a real worker on what the examples queued; no task may fail because of the docs."""
    ran_tasks = Task.objects.ready().exists()
    env = worker_env(DJANGO_SETTINGS_MODULE=settings_module(root, assigned))
    env["PYTHONPATH"] = f"{root}:{env['PYTHONPATH']}"
    result = subprocess.run(
        [sys.executable, "-m", "django", "task_worker", "--burst", "--concurrency", "1"],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert not Task.objects.running().exists()
    assert not Task.objects.ready().exists(), result.stdout
    for task in Task.objects.failed():
        assert not any(bug in (task.error or "") for bug in EXAMPLE_BUGS), (task.task, task.error)
    check_console_lines(result.stdout, ran_tasks)
    check_workflows(result.stdout)


def check_workflows(stdout: str) -> None:
    """The examples' workflows ended as promised: nothing waits any more, no task started before
    what it depends on had completed, and every batch is finished with its callback run after its
    last task (the order is the worker's console lines', one child: no two clocks to compare)."""
    assert not Task.objects.filter(status=Task.WAITING).exists(), "a task waits for ever"
    events: dict[tuple[str, str], int] = {}
    for number, line in enumerate(stdout.splitlines()):
        match = re.match(r"(claimed|finished) ([0-9a-f-]{36}) ", line)
        if match:
            events.setdefault((match.group(1), match.group(2)), number)
    for edge in Dependency.objects.select_related("task", "depends_on"):
        task, dependency = edge.task, edge.depends_on
        if task.started_at is None:
            continue
        assert dependency.status == Task.COMPLETED, (task.task, dependency.task, dependency.status)
        claimed = events.get(("claimed", str(task.id)))
        finished = events.get(("finished", str(dependency.id)))
        if claimed is not None and finished is not None:
            assert finished < claimed, (task.task, "claimed before", dependency.task, "finished")
    for batch in Batch.objects.select_related("callback"):
        assert batch.finished_at is not None, f"batch {batch} never finished"
        assert not batch.tasks.filter(status__in=Task.UNFINISHED).exists()
        if batch.callback is None:
            continue
        assert batch.callback.status in Task.FINISHED, f"the callback of {batch} did not run"
        claimed = events.get(("claimed", str(batch.callback_id)))
        for member in batch.tasks.all():
            finished = events.get(("finished", str(member.id)))
            if claimed is not None and finished is not None:
                assert finished < claimed, (f"the callback of {batch} ran before", member.task)


def console_lines() -> dict[str, tuple[re.Pattern[str], list[str]]]:
    """The documented console lines: by event, a pattern and the literal text between values."""
    (block,) = [b for b in all_blocks("text", [DOCS / "worker.md"]) if b.body.startswith("worker ")]
    wildcards = {
        r"[\w-]+:\d+": r"\S+:\d+",  # host:pid
        r"[0-9a-f]+…[0-9a-f]+": r"[0-9a-f-]{36}",  # a task id
        r"myapp\.tasks\.\w+": r"\S+",  # a dotted path
        r"\d+(?:\.\d+)?": r"[\d.]+",  # a number
        r"SIGTERM": r"SIG[A-Z]+",
        r"(?<=: )Completed(?= in)": r"[\w ]+",  # the status label
        r"(?<=queues )all": r".+",
    }
    lines = {}
    for line in block.body.splitlines():
        parts: list[Any] = [line]
        for raw, replacement in wildcards.items():
            parts = [
                piece
                for part in parts
                for piece in (
                    [part] if isinstance(part, tuple) else _split_keep(part, raw, replacement)
                )
            ]
        pattern = "".join(p[0] if isinstance(p, tuple) else re.escape(p) for p in parts)
        literals = [p for p in parts if isinstance(p, str) and p.strip()]
        words = line.split()
        event = f"{words[0]} {words[2]}" if words[0] == "worker" else words[0]
        lines[event] = (re.compile(pattern), literals)
    return lines


def _split_keep(text: str, raw: str, replacement: str) -> list[Any]:
    """``text`` split around matches of ``raw``, each match replaced by ``(replacement,)``."""
    pieces: list[Any] = []
    last = 0
    for match in re.finditer(raw, text):
        pieces += [text[last : match.start()], (replacement,)]
        last = match.end()
    return [*pieces, text[last:]]


def test_every_documented_console_line_is_written_by_the_worker():
    source = "".join(p.read_text() for p in (ROOT / "django_simple_queue" / "worker").glob("*.py"))
    lines = console_lines()
    assert {"worker started:", "worker stopped:", "claimed", "finished", "alive:"} <= set(lines)
    for event, (_, literals) in lines.items():
        for literal in literals:
            assert literal in source, f"{event}: {literal!r} is not in django_simple_queue/worker/"


def check_console_lines(stdout: str, ran_tasks: bool) -> None:
    """A real worker's output has the documented lines."""
    output = stdout.splitlines()
    events = ["worker started:", "worker stopped:"]
    if ran_tasks:
        events += ["claimed", "finished"]
    documented = console_lines()
    for event in events:
        pattern = documented[event][0]
        assert any(pattern.fullmatch(line) for line in output), (event, output[:5])


@pytest.mark.parametrize("block", all_blocks("lean"), ids=str)
def test_lean_settings_modules_check_and_run_a_worker(block, tmp_path, transactional_db):
    (tmp_path / "mysite").mkdir()
    (tmp_path / "mysite" / "__init__.py").write_text("")
    (tmp_path / "mysite" / "settings.py").write_text("from tests.settings import *\n")
    body = block.body.replace('"<project>"', '"myapp"').replace("<project>", "mysite")
    if connections["default"].vendor == "mysql":
        # The PgBouncer advice names PostgreSQL's port; Django 6's check connects to MySQL there.
        port = connections["default"].settings_dict["PORT"]
        body = re.sub(r'(\["PORT"\] = )"\d+"', rf'\1"{port}"', body)
    (tmp_path / "mysite" / "task_worker_settings.py").write_text(body)
    (tmp_path / "myapp").mkdir()
    (tmp_path / "myapp" / "__init__.py").write_text("")
    env = worker_env(DJANGO_SETTINGS_MODULE="mysite.task_worker_settings")
    env["PYTHONPATH"] = f"{tmp_path}:{env['PYTHONPATH']}"
    script = (
        "import sys, django; django.setup()\n"
        "from django.conf import settings\n"
        "from django.core.management import call_command\n"
        "call_command('check')\n"
        "assert 'django.contrib.admin' not in sys.modules\n"
        "print(settings.INSTALLED_APPS)\n"
    )
    printed = run_python(script, env)
    assert "django_simple_queue" in printed and "django.contrib.admin" not in printed
    if "PORT" in block.body:
        return  # points at another server (PgBouncer advice); checked, not run
    task = TaskFactory(task="tests.tasks.add", args=json.dumps({"a": 2, "b": 3}))
    run = subprocess.run(
        [sys.executable, "-m", "django", "task_worker", "--burst"],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    task.refresh_from_db()
    assert task.status == Task.COMPLETED, task.error
    assert task.output == "5"


def test_the_version_lives_in_one_place_and_heads_the_changelog():
    import django_simple_queue

    setup_cfg = (ROOT / "setup.cfg").read_text()
    assert re.search(r"^version = attr: django_simple_queue.__version__$", setup_cfg, re.M)
    assert not re.search(r"^version = \d", setup_cfg, re.M)
    changelog = (ROOT / "CHANGELOG.md").read_text()
    first = re.search(r"^## (\S+)", changelog, re.M)
    assert first is not None and first.group(1) == django_simple_queue.__version__


def test_the_demo_banner_in_the_quickstart_is_what_make_demo_prints():
    (banner,) = [b for b in all_blocks("text", [DOCS / "quickstart.md"]) if "Demo site" in b.body]
    script = (ROOT / "scripts" / "demo.sh").read_text()
    for line in banner.body.strip().splitlines():
        assert line.replace("8000", "$PORT") in script, line
