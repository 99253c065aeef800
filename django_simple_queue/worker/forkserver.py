"""Where the worker's children come from: a small, quiet process that forks them.

The supervisor forks the fork server once, when it starts, and from then on asks it for children
instead of forking itself. Forking the busy supervisor is what made children costly: after a
``fork()``, every page the supervisor writes to is copied (copy-on-write) for as long as the child
lives. The fork server writes almost nothing, so a fork costs little on either side.

A child's parent is the fork server, which reaps it and writes its exit code to a pipe that the
supervisor watches (the child's *sentinel*: readable once the child has exited, or once the fork
server is gone). Each child leads a session (and process group) of its own, so that what its task
starts can be stopped with it, and a signal to the worker's group does not reach it. Each process
dies with its parent: the supervisor's death takes the fork server, and the fork server takes every
child's group with it.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import gc
import importlib
import logging
import os
import select
import signal
import socket
import struct
import sys
import time
import traceback
from collections.abc import Callable
from multiprocessing.connection import Connection
from types import FrameType
from typing import Any

from django import db

logger = logging.getLogger("django_simple_queue")

PR_SET_PDEATHSIG = 1
SPAWN_TIMEOUT = 30.0
_INT = struct.Struct("i")
_SIZE = struct.Struct("H")


class ForkServerGone(Exception):
    """The fork server could not fork a child, or has exited: start another."""


@functools.cache
def _prctl() -> Callable[..., int] | None:
    """libc's ``prctl``, or None: looked up once, by the fork server for itself and its children."""
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


def die_with_parent(parent_pid: int, sig: signal.Signals = signal.SIGKILL) -> None:
    """Ask Linux to send ``sig`` to this process when its parent dies, however the parent dies."""
    prctl = _prctl()
    if prctl is not None:
        prctl(PR_SET_PDEATHSIG, sig)
    if os.getppid() != parent_pid:
        os._exit(1)


# The supervisor's connections as a forked process inherited them. Kept referenced so that they are
# never finalized there: closing one would end the supervisor's session (it is the same socket).
_inherited: list[Any] = []


def kill_group(pid: int, sig: signal.Signals) -> None:
    """Send ``sig`` to the process group led by child ``pid``: the child and what its task started.

    A child not yet in a group of its own (it has just been forked) gets the signal alone.
    """
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
    except PermissionError:
        pass  # every process left in the group is another user's (a setuid program): not ours


def forget_connections() -> None:
    """Make the ORM open a connection of its own if one is needed; never touch inherited ones."""
    for wrapper in db.connections.all(initialized_only=True):
        if wrapper.connection is not None:
            _inherited.append(wrapper.connection)
            wrapper.connection = None
            wrapper.in_atomic_block = False
            wrapper.savepoint_ids = []
            wrapper.needs_rollback = False
            wrapper.closed_in_transaction = False
            wrapper.run_on_commit = []


class ChildProcess:
    """A child of the fork server, with the part of ``multiprocessing.Process`` the worker uses.

    The fork server writes two numbers to the child's status pipe: its pid once forked, its exit
    code once reaped. The supervisor does not wait for the first: tasks can be sent to the child's
    pipe before the child exists.
    """

    def __init__(self, sentinel: int) -> None:
        # Readable when there is news: the pid, then the exit code, or end-of-file if the fork
        # server is gone (with it, the child: it dies with its parent).
        self.sentinel = sentinel
        # is_alive() is called often: one poll() on a poll object kept for it, nothing built.
        self._poll = select.poll()
        self._poll.register(sentinel, select.POLLIN)
        self._pid: int | None = None
        self.exitcode: int | None = None
        self._exited = False
        self._unread = b""

    @property
    def pid(self) -> int | None:
        """The child's pid (waiting for the fork server to tell it), or None if it never ran."""
        self._read_until(lambda: self._pid is not None, SPAWN_TIMEOUT)
        return self._pid

    def is_alive(self) -> bool:
        self._read(0)
        return not self._exited

    def join(self, timeout: float | None = None) -> None:
        """Wait up to ``timeout`` seconds for the child to exit; then its exit code is known.

        The exit code stays None if the fork server died first (it killed the child with it).
        """
        self._read_until(lambda: False, timeout)

    def _read_until(self, done: Callable[[], bool], timeout: float | None) -> None:
        """Take in what the fork server writes until ``done()``, the exit, or ``timeout`` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not done() and not self._exited:
            left = None if deadline is None else max(deadline - time.monotonic(), 0)
            if not self._read(left) and left == 0:
                return

    def _read(self, timeout: float | None) -> bool:
        """Take in what the fork server wrote, waiting up to ``timeout``; False if nothing came."""
        if self._exited or not self._poll.poll(None if timeout is None else timeout * 1000):
            return False
        try:
            data = os.read(self.sentinel, 2 * _INT.size)
        except OSError:
            data = b""
        if not data:
            self._exited = True
            return True
        self._unread += data
        while len(self._unread) >= _INT.size:
            (number,) = _INT.unpack(self._unread[: _INT.size])
            self._unread = self._unread[_INT.size :]
            if self._pid is None:
                self._pid = number
            else:
                self.exitcode = number
                self._exited = True
        return True

    def kill(self) -> None:
        """SIGKILL the child's process group, while the child lives."""
        pid = self.pid
        if pid is not None and self.is_alive():
            kill_group(pid, signal.SIGKILL)

    def terminate(self) -> None:
        """SIGTERM the child's process group, while the child lives; SIGUSR1 tells the child that
        this SIGTERM, unlike a service manager's, is meant for it too."""
        pid = self.pid
        if pid is not None and self.is_alive():
            kill_group(pid, signal.SIGTERM)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGUSR1)

    def kill_leftovers(self) -> None:
        """Kill what the child's task started, if the fork server died before it could.

        Only for a child that died with its fork server (which kills a child's group when it reaps
        it): a group's id is not given to another process while any member of the group is alive.
        """
        if self._pid is not None and self._exited and self.exitcode is None:
            kill_group(self._pid, signal.SIGKILL)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.sentinel)


class ForkServer:
    """The supervisor's handle on its fork server."""

    def __init__(self, pid: int, sock: socket.socket) -> None:
        self.pid = pid
        self.sock = sock

    @classmethod
    def start(
        cls,
        target: Callable[[Connection, int, int], None],
        *,
        init: Callable[[], None] = lambda: None,
        prepare: Callable[[str], object] = importlib.import_module,
    ) -> ForkServer:
        """Fork the server; each child runs ``target(conn, fork_server_pid, log_fd)``.

        The server runs ``init()`` once, and ``prepare(name)`` for each ``preload(name)``: what
        they leave behind, every child forked afterwards has from the start.
        """
        ours, theirs = socket.socketpair()
        supervisor = os.getpid()

        def serve() -> None:
            ours.close()
            init()
            _serve(theirs, supervisor, target, prepare)

        pid = _fork(serve)
        theirs.close()
        return cls(pid, ours)

    def spawn(self, log_fd: int) -> tuple[ChildProcess, Connection]:
        """Ask for a child; return it and the supervisor's end of its pipe. Raise ForkServerGone.

        Returns at once: the child is forked meanwhile, and reads its pipe when it is ready.
        """
        ours, theirs = socket.socketpair()
        sentinel, status = os.pipe()
        try:
            # One byte with three file descriptors: a request on its own, never merged with another.
            socket.send_fds(self.sock, [b"f"], [theirs.fileno(), status, log_fd])
        except OSError as exc:
            ours.close()
            os.close(sentinel)
            raise ForkServerGone(f"the fork server is gone ({exc})") from exc
        finally:
            theirs.close()
            os.close(status)
        return ChildProcess(sentinel), Connection(ours.detach())

    def preload(self, name: str) -> None:
        """Have the server run ``prepare(name)`` (import a module), so that children need not."""
        data = name.encode()
        with contextlib.suppress(OSError):  # gone: the next spawn says so
            self.sock.sendall(b"i" + _SIZE.pack(len(data)) + data)

    def alive(self) -> bool:
        try:
            return os.waitpid(self.pid, os.WNOHANG) == (0, 0)
        except ChildProcessError:
            return False

    def close(self) -> None:
        """Let the server exit (closing our end tells it to) and reap it."""
        self.sock.close()
        with contextlib.suppress(ChildProcessError):
            os.waitpid(self.pid, 0)


def _serve(
    sock: socket.socket,
    supervisor: int,
    target: Callable[[Connection, int, int], None],
    prepare: Callable[[str], object],
) -> None:
    """The fork server's loop: fork on request, reap children and report how they exited."""
    # For each child: the read end of a pipe only it holds open, and where its exit code goes.
    children: dict[int, tuple[int, int]] = {}
    server = os.getpid()

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        # Ctrl-C and a service manager's SIGTERM reach the whole process group: the supervisor
        # decides. A SIGTERM after the supervisor died is the parent-death signal: take every
        # child's group along (the kernel's own parent-death SIGKILL reaches children only).
        # Not in a child that has not yet installed handlers of its own.
        if os.getpid() == server and os.getppid() != supervisor:
            _kill_groups(children)
            os._exit(1)

    signal.signal(signal.SIGTERM, on_sigterm)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    die_with_parent(supervisor, signal.SIGTERM)
    forget_connections()
    # Objects that exist now are never freed here: the collector leaves their pages alone, and
    # children share those pages for as long as they only read them.
    gc.freeze()
    readable = select.poll()
    readable.register(sock, select.POLLIN)
    while True:
        for fd, _ in readable.poll():
            if fd == sock.fileno():
                data, fds, _, _ = socket.recv_fds(sock, 1, 3)
                if not data:
                    _kill_groups(children)  # the supervisor is gone, or stopped them all
                    return
                if data == b"i":
                    (size,) = _SIZE.unpack(_recv_exactly(sock, _SIZE.size))
                    _preload(prepare, _recv_exactly(sock, size).decode())
                    continue
                conn_fd, status, log_fd = fds
                # What the child must not keep: this socket, and the pipes of the other children.
                others = [sock.fileno(), status, *children, *(s for _, s in children.values())]
                try:
                    pid, alive = _fork_child(target, conn_fd, log_fd, others)
                except OSError:
                    os.close(status)  # the supervisor reads end-of-file: no child
                else:
                    os.write(status, _INT.pack(pid))
                    children[alive] = (pid, status)
                    readable.register(alive, select.POLLIN)
                os.close(conn_fd)
                os.close(log_fd)
            else:
                pid, status = children.pop(fd)
                readable.unregister(fd)
                os.close(fd)
                # What its tasks started and left behind goes with it. Before the reaping: until
                # then, no other process can be given the group's id.
                kill_group(pid, signal.SIGKILL)
                _, wait_status = os.waitpid(pid, 0)
                with contextlib.suppress(OSError):  # the supervisor may have stopped caring
                    os.write(status, _INT.pack(os.waitstatus_to_exitcode(wait_status)))
                os.close(status)


def _kill_groups(children: dict[int, tuple[int, int]]) -> None:
    for pid, _ in list(children.values()):
        kill_group(pid, signal.SIGKILL)


def _recv_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise EOFError("the supervisor closed the socket mid-message")
        data += chunk
    return data


def _preload(prepare: Callable[[str], object], name: str) -> None:
    """Run ``prepare(name)`` here, once: every child forked afterwards has what it made."""
    try:
        prepare(name)
    except BaseException:
        # The child that needs it does it again, and reports the error properly.
        logger.debug("could not preload %s", name, exc_info=True)
    # Children must not share a connection that the import may have opened.
    forget_connections()
    gc.freeze()


def _fork_child(
    target: Callable[[Connection, int, int], None], conn_fd: int, log_fd: int, close: list[int]
) -> tuple[int, int]:
    """Fork one child running ``target``; return its pid and the pipe end that tells it exited."""
    alive, held = os.pipe()
    server = os.getpid()

    def run() -> None:
        # A group of its own, stopped as one by the supervisor; no terminal to signal it. Handlers,
        # not SIG_IGN, which what its tasks start would inherit: they get the default ones.
        os.setsid()
        signal.signal(signal.SIGTERM, _sigterm_unless_asked)
        signal.signal(signal.SIGUSR1, _stop_asked)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        for fd in [alive, *close]:
            os.close(fd)
        target(Connection(conn_fd), server, log_fd)

    pid = _fork(run)
    os.close(held)
    return pid, alive


def _sigterm_unless_asked(signum: int, frame: FrameType | None) -> None:
    """A child's SIGTERM handler: a SIGTERM to every process of the worker (systemd's default
    ``KillMode=control-group``) does not stop a task; the supervisor decides (``_stop_asked``)."""


def _stop_asked(signum: int, frame: FrameType | None) -> None:
    """The supervisor's SIGTERM to the child's group is meant for the child too: take it as a
    process without a handler does, unless the task installed one of its own."""
    if signal.getsignal(signal.SIGTERM) is _sigterm_unless_asked:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)


def _fork(body: Callable[[], None]) -> int:
    """Fork; the child runs ``body`` and exits (status 1 if it raised). Return the child's pid."""
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:
        body()
        code = 0
    except BaseException:
        traceback.print_exc()
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)
