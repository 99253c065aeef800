"""Many hosts on one machine: Linux network namespaces joined to the root namespace by veth pairs.

Host N is the namespace ``dsq-hN``; its link is a veth pair, ``dsq-hN-root`` (10.77.N.1, in the root
namespace, where PostgreSQL listens) and ``dsq-hN-host`` (10.77.N.2, inside). A host is cut off by
taking its link down and healed by bringing it back up: packets in flight are lost, and the TCP
connections of its processes hang, as across a real partition, rather than fail.

Creating namespaces needs root (CI runs the suite as root); ``unavailable()`` says why not, for a
skip. Namespaces and links left by an interrupted run are removed before new ones are made.
"""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import pytest
from django.db import connection

from tests.chaos.conftest import Fleet, WorkerProcess, postgres

PREFIX = "dsq-h"
SUBNET = "10.77"


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check)


@dataclass(frozen=True)
class Host:
    """One simulated machine: a network namespace with a link to the root namespace."""

    index: int

    @property
    def namespace(self) -> str:
        return f"{PREFIX}{self.index}"

    @property
    def name(self) -> str:
        """Its host name, and the ``--name`` of the worker it runs."""
        return f"h{self.index}"

    @property
    def root_link(self) -> str:
        return f"{self.namespace}-root"

    @property
    def root_address(self) -> str:
        """Where this host reaches PostgreSQL."""
        return f"{SUBNET}.{self.index}.1"

    @property
    def address(self) -> str:
        return f"{SUBNET}.{self.index}.2"

    def create(self) -> None:
        inside = f"{self.namespace}-host"
        ip("netns", "add", self.namespace)
        ip("link", "add", self.root_link, "type", "veth", "peer", "name", inside)
        ip("link", "set", inside, "netns", self.namespace)
        ip("addr", "add", f"{self.root_address}/24", "dev", self.root_link)
        ip("link", "set", self.root_link, "up")
        self.run("ip", "addr", "add", f"{self.address}/24", "dev", inside)
        self.run("ip", "link", "set", inside, "up")
        self.run("ip", "link", "set", "lo", "up")

    def cut(self) -> None:
        """Take the link down: nothing goes through until ``heal``."""
        ip("link", "set", self.root_link, "down")

    def heal(self) -> None:
        ip("link", "set", self.root_link, "up")

    def prefix(self) -> list[str]:
        """Run a command inside this host's namespace, with its own host name."""
        return [
            "ip",
            "netns",
            "exec",
            self.namespace,
            "unshare",
            "--uts",
            "sh",
            "-c",
            f'hostname {self.name} && exec "$@"',
            "sh",
        ]

    def run(self, *command: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["ip", "netns", "exec", self.namespace, *command],
            capture_output=True,
            text=True,
            check=True,
        )


def remove_all() -> None:
    """Delete every namespace and link of ours (deleting a namespace deletes its veth pair)."""
    for line in ip("netns", "list", check=False).stdout.splitlines():
        name = line.split()[0] if line.strip() else ""
        if name.startswith(PREFIX):
            ip("netns", "delete", name, check=False)
    for line in ip("-o", "link", "show", check=False).stdout.splitlines():
        name = line.split(":")[1].strip().split("@")[0]
        if name.startswith(PREFIX):
            ip("link", "delete", name, check=False)


def unavailable() -> str | None:
    """Why namespaces cannot be used here, or None."""
    probe = f"{PREFIX}probe"
    try:
        made = ip("netns", "add", probe, check=False)
    except FileNotFoundError:
        return "needs the ip command (iproute2)"
    if made.returncode != 0:
        return f"ip netns add is not allowed here (needs root): {made.stderr.strip()}"
    ip("netns", "delete", probe, check=False)
    for tool in ("unshare", "hostname"):
        if subprocess.run(["which", tool], capture_output=True).returncode != 0:
            return f"needs {tool}"
    return None


class Network:
    """The hosts of one test module, and the database server listening on their links."""

    def __init__(self, count: int) -> None:
        self.hosts = [Host(index) for index in range(1, count + 1)]

    @property
    def listen(self) -> list[str]:
        return [host.root_address for host in self.hosts]

    def up(self) -> None:
        remove_all()
        for host in self.hosts:
            host.create()
        self.restart_database()

    def down(self) -> None:
        remove_all()
        with contextlib.suppress(subprocess.CalledProcessError):
            postgres("stop")
            postgres("start")

    def restart_database(self, *, down_for: float = 0.0, max_connections: int = 200) -> float:
        """Stop the server and start it again listening on the hosts' links; returns the
        seconds it took (``down_for`` of them stopped)."""
        took = postgres("stop")
        time.sleep(down_for)
        took += down_for + postgres("start", listen=self.listen, max_connections=max_connections)
        connection.close()
        return took

    def heal_all(self) -> None:
        for host in self.hosts:
            host.heal()


def start_worker(
    fleet: Fleet,
    host: Host,
    *args: str,
    concurrency: int = 2,
    name: str | None = None,
    clock: str | None = None,
    env: dict[str, str] | None = None,
) -> WorkerProcess:
    """``task_worker --name hN`` on ``host`` (with its clock shifted by ``clock``, for faketime)."""
    under: Sequence[str] = ["faketime", "-f", clock] if clock else ()
    worker = fleet.start(
        "--name",
        name or host.name,
        *args,
        concurrency=concurrency,
        env={"PGHOST": host.root_address, **(env or {})},
        prefix=[*host.prefix(), *under],
    )
    worker.host = host.name
    return worker


def three_hosts() -> Iterator[Network]:
    """Three hosts (the ``network`` fixture); PostgreSQL restarted to listen on their links."""
    reason = unavailable()
    if reason:
        pytest.skip(reason)
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL (run with DSQ_TEST_DB=postgres)")
    net = Network(3)
    try:
        net.up()
        yield net
    finally:
        net.down()
