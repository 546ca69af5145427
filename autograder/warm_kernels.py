"""The grader's end of a submission's warmed interpreter: kernels forked inside the sandbox.

Starting a Jupyter kernel costs a fresh interpreter that imports ipykernel, then NumPy and
Matplotlib in the notebook's first cell: about a second of CPU for each of a submission's
notebooks. :class:`ForkServer` starts, once per submission, one bubblewrap sandbox whose
process 1 is :mod:`autograder.kernel_forkserver`: it imports all that once, and each notebook's
kernel is a fresh fork of it, with a fresh copy of the submitted files, an empty ``/tmp`` and
home folder, and no process of an earlier kernel left (the sandbox is made as
:func:`autograder.sandbox.command` makes every other; the rule that the host opens no path the
student can write holds: the kernel's sockets still go in as descriptors, now over the fork
server's socket). Only for bubblewrap isolation: the ``process`` mode starts kernels as before.

:class:`ForkedKernel` stands in for the ``subprocess.Popen`` of a kernel in jupyter_client's
provisioner (``poll``, ``wait``, ``send_signal``, ``kill``): the kernel is the sandbox's
process, not the grader's child, so its end and its signals go through the fork server. A fork
server that no longer answers (or was stopped at the memory cap) is stopped whole, with every
process of the submission; the next kernel starts a new one.
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from . import sandbox
from .submission_processes import kill_marked_processes

SOURCE = Path(__file__).with_name("kernel_forkserver.py")
#: Seconds the fork server gets to warm up (imports, font list) before the grader gives up on it.
WARM_TIMEOUT = 120.0
#: Seconds it gets to answer a request (kill every process, fork a kernel).
ANSWER_TIMEOUT = 20.0
MAX_MESSAGE = 1 << 16
#: Matplotlib's font list handed to this process's fork servers, ``(file name, JSON)``: built once per grading
#: run by :func:`build_font_list` (the jobs, forked from the run, inherit it); None: each fork server builds it.
FONT_LIST: tuple[str, bytes] | None = None
#: The largest font list handed in (it goes in through a pipe); a larger one each fork server builds itself.
MAX_FONT_LIST = 60_000
#: Run in a sandbox of its own, with no submitted file: prints the font list Matplotlib builds there.
FONT_LIST_SCRIPT = """
import json, os, sys
import matplotlib.font_manager as fm
path = os.path.join(os.environ["HOME"], "fontlist.json")
fm.json_dump(fm.fontManager, path)
with open(path, encoding="utf-8") as built:
    json.dump({"name": f"fontlist-v{fm.FontManager.__version__}.json", "list": built.read()}, sys.stdout)
"""


class ForkServerFailed(RuntimeError):
    """The fork server did not start or stopped answering."""


class ForkServer:
    """One submission's sandbox with a warmed interpreter that forks its kernels."""

    def __init__(self, spec: sandbox.SandboxSpec, log_path: str, boot: str):
        self.spec = spec
        self.boot = boot
        self.exits: dict[int, int] = {}
        self.channel, inside = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        # from its text (no frame of it has a source file a kernel could read), the boot code after it
        source = SOURCE.read_text() + "\n" + boot
        fonts = {FONT_LIST[0]: FONT_LIST[1]} if FONT_LIST is not None else {}
        argv = [sys.executable, "-P", "-c", source, str(inside.fileno())]
        argv += [sandbox.data_path(spec, name) for name in fonts]
        command = sandbox.command(argv, spec, data=fonts, keep_fds=(inside.fileno(),), as_pid_1=True)
        try:
            with open(log_path, "ab") as log:
                self.process = subprocess.Popen(command.argv, **sandbox.popen_options(spec, command, log))
        finally:
            inside.detach()  # closed with the other descriptors the sandbox holds its own copies of
            command.close()
        try:
            self._answer("ready", WARM_TIMEOUT)
        except BaseException:
            self.stop()
            raise

    def alive(self) -> bool:
        return self.channel is not None and self.process.poll() is None

    def _receive(self, timeout: float) -> dict | None:
        """The next message (None: nothing within ``timeout``); a kernel's end is recorded on the way."""
        if self.channel is None:
            raise ForkServerFailed("the fork server was stopped")
        ready, _, _ = select.select([self.channel], [], [], timeout)
        if not ready:
            return None
        try:
            data = self.channel.recv(MAX_MESSAGE)
        except OSError as error:
            raise ForkServerFailed(f"the fork server's socket failed: {error}") from None
        if not data:
            raise ForkServerFailed("the fork server ended")
        try:
            message = json.loads(data)
            if "exited" in message:
                self.exits[int(message["exited"])] = int(message["status"])
        except (ValueError, TypeError, KeyError) as error:
            raise ForkServerFailed(f"the fork server sent something unexpected ({error})") from None
        if not isinstance(message, dict):
            raise ForkServerFailed("the fork server sent something unexpected")
        return message

    def _answer(self, key: str, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            message = self._receive(left)
            if message is not None and key in message:
                return message
            if message is not None and "error" in message:
                raise ForkServerFailed(message["error"])
        raise ForkServerFailed(f"the fork server sent no {key!r} within {timeout:.0f} s")

    def _send(self, message: dict, fds: tuple[int, ...] = ()) -> None:
        if self.channel is None:
            raise ForkServerFailed("the fork server was stopped")
        try:
            socket.send_fds(self.channel, [json.dumps(message).encode()], list(fds))
        except OSError as error:
            raise ForkServerFailed(f"the fork server takes no request: {error}") from None

    def start_kernel(self, listeners: dict[str, int], connection: dict, argv: list[str]) -> ForkedKernel:
        """Fork a kernel: the boot code on ``listeners`` (``{address: fd}``; the caller closes its fds),
        its connection file holding ``connection``, then ``argv``."""
        addresses = list(listeners)
        request = {"op": "start", "addresses": addresses, "argv": argv, "connection": connection}
        self._send(request, tuple(listeners[a] for a in addresses))
        pid = int(self._answer("started", ANSWER_TIMEOUT)["started"])
        return ForkedKernel(self, pid)

    def exit_status(self, pid: int) -> int | None:
        """The kernel's exit status, None while it runs (a fork server that ended: killed, -9)."""
        if pid in self.exits:
            return self.exits[pid]
        if not self.alive():
            return -signal.SIGKILL
        try:
            while self._receive(0) is not None:
                if pid in self.exits:
                    return self.exits[pid]
        except ForkServerFailed:
            self.stop()
            return -signal.SIGKILL
        return None

    def signal(self, signum: int) -> None:
        """Send ``signum`` to the kernel (SIGKILL: every process of the sandbox but the fork server)."""
        if signum == signal.SIGKILL:
            self.kill_all()
            return
        try:
            self._send({"op": "signal", "signal": int(signum)})
        except ForkServerFailed:
            self.stop()

    def kill_all(self) -> None:
        """Every process of the sandbox but the fork server killed; the whole sandbox if it does not answer."""
        if not self.alive():
            self.stop()
            return
        try:
            self._send({"op": "kill"})
            self._answer("killed", ANSWER_TIMEOUT)
        except ForkServerFailed:
            self.stop()

    def stop(self) -> None:
        """End the sandbox and every process of the submission."""
        if self.channel is not None:
            self.channel.close()
            self.channel = None
        if self.process.poll() is None:
            self.process.kill()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        kill_marked_processes(self.spec.marker)


class ForkedKernel:
    """The provisioner's view of a forked kernel: what jupyter_client uses of ``subprocess.Popen``."""

    stdin = stdout = stderr = None

    def __init__(self, server: ForkServer, pid: int):
        self.server = server
        self.pid = pid  # inside the sandbox's pid namespace: never signalled by the host directly

    def poll(self) -> int | None:
        return self.server.exit_status(self.pid)

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while (status := self.poll()) is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired("forked kernel", timeout)
            time.sleep(0.02)
        return status

    def send_signal(self, signum: int) -> None:
        self.server.signal(signum)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)


_SERVER: ForkServer | None = None


def server_for(spec: sandbox.SandboxSpec, log_path: str, boot: str) -> ForkServer:
    """The current submission's fork server for kernels that run ``boot``, started (or started
    again) if it is not running."""
    global _SERVER
    if _SERVER is not None and (_SERVER.spec != spec or _SERVER.boot != boot or not _SERVER.alive()):
        stop()
    if _SERVER is None:
        _SERVER = ForkServer(spec, log_path, boot)
    return _SERVER


def current() -> ForkServer | None:
    return _SERVER if _SERVER is not None and _SERVER.alive() else None


def stop() -> None:
    """Stop the fork server of this process, if any (at the end of a submission's notebooks)."""
    global _SERVER
    if _SERVER is not None:
        _SERVER.stop()
        _SERVER = None


def build_font_list(spec: sandbox.SandboxSpec) -> tuple[str, bytes] | None:
    """Matplotlib's font list as it is built in a fresh sandbox of ``spec`` (whose working folder is empty):
    ``(file name, JSON)`` for :data:`FONT_LIST`, or None if it could not be built or is too large to hand in.

    Every fork server would otherwise build the same list again (about a fifth of a CPU-second): the
    sandboxes see the same system fonts and none of the grader's own. Built where no student's file or
    code has been, so nothing of one submission reaches another's sandbox through it.
    """
    command = sandbox.command([sys.executable, "-P", "-c", FONT_LIST_SCRIPT], spec)
    try:
        options = sandbox.popen_options(spec, command, subprocess.PIPE)  # its output read here
        done = subprocess.run(command.argv, **options, timeout=WARM_TIMEOUT, check=False)
    except subprocess.TimeoutExpired:
        return None
    finally:
        command.close()
        kill_marked_processes(spec.marker)
    try:
        found = json.loads(done.stdout)
        name, text = found["name"], found["list"].encode()
        json.loads(text)
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
    if done.returncode != 0 or not name.startswith("fontlist-v") or "/" in name or len(text) > MAX_FONT_LIST:
        return None
    return name, text


def enabled(spec: sandbox.SandboxSpec) -> bool:
    """Whether kernels are forked for ``spec`` (bubblewrap isolation, unless ``AUTOGRADER_COLD_KERNELS`` is set)."""
    return spec.isolation == sandbox.ISOLATION_BWRAP and not os.environ.get("AUTOGRADER_COLD_KERNELS")
