"""Running a submission's notebook kernel inside the sandbox, and surviving it.

nbgrader executes notebooks with nbclient and a Jupyter kernel manager. Here:

* :class:`SandboxKernelManager` launches the IPython kernel through
  :mod:`autograder.sandbox` (bubblewrap or process isolation), talks to it over
  Unix-domain sockets (``ipc`` transport, which works across network
  namespaces), interrupts it by message (a signal cannot cross the pid
  namespace), and kills everything it started when the kernel stops. The
  sockets are bound by the host in its own folder and handed to the kernel as
  listening descriptors; the connection file goes in read-only through a
  descriptor too (the rule in :mod:`autograder.sandbox`: the host opens no
  path the student can write, before or after a kernel restart).
* :class:`SandboxExecute` is nbgrader's ``Execute`` preprocessor with what a
  hostile or broken submission needs: a kernel that ignores the interrupt
  after a cell timeout, or dies (``os._exit``, killed at the memory limit), is
  restarted and the remaining cells run (and fail honestly); a per-notebook
  time limit; a cap on the output kept per cell. A test's verdict is its
  outcome (an error, or the value it returns), never the stream its output
  went to: nbgrader fails a cell with any ``stderr`` output, so the stderr of
  graded test cells (a ``logging.warning``, a ``print(..., file=sys.stderr)`` in
  correct code) is kept as ordinary output, and the grader's own truncation
  note is ordinary output too.

One grading process grades one student, so the sandbox of the current
student is a module-level setting (:func:`configure`).
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
import time

import zmq
from jupyter_client.manager import AsyncKernelManager
from jupyter_core.utils import ensure_async, run_sync
from nbclient.exceptions import DeadKernelError
from nbformat import NotebookNode
from nbgrader.preprocessors import Execute
from traitlets import Bool, Float, Integer

from dnn_course.nbgrader_cells import stderr_as_output

from . import bubblewrap, memory_cap, sandbox, tamper_probe, warm_kernels
from .submission_processes import kill_marked_processes

_SPEC: sandbox.SandboxSpec | None = None
#: How long the host waits to hand a message to a kernel channel (ms). A kernel that broke its end
#: (it wrote over its own sockets and pipes) never takes one: a send without this limit blocks the
#: grader's event loop, the watchdog included, until the submission's time limit.
SEND_TIMEOUT_MS = 5000


class ChannelBroken(DeadKernelError):
    """The kernel's channel no longer takes messages: treated as a dead kernel (restarted, the cell charged)."""


def configure(spec: sandbox.SandboxSpec) -> None:
    """Set the sandbox used by every kernel started in this process (a previous one's fork server stops)."""
    global _SPEC
    warm_kernels.stop()
    _SPEC = spec


def current_spec() -> sandbox.SandboxSpec:
    if _SPEC is None:
        raise RuntimeError("autograder.kernel.configure(spec) must be called before grading")
    return _SPEC


#: Runs inside the sandbox in place of ``python -m ipykernel_launcher``: the kernel binds
#: its channels to the listening sockets the host created (``ZMQ_USE_FD``), given as a JSON
#: map ``{"ipc://<address>": fd}`` in ``argv[1]``; the addresses are only labels. The kernel
#: creates no socket file of its own (its internal pipes are on loopback TCP or inproc). No debugger is
#: ever attached to a grading kernel, so debugpy is not imported (a fifth of the kernel's start-up CPU);
#: ipykernel runs without it as where it is not installed. Once the kernel has shut down (every reply
#: sent) it exits at once: the interpreter's own finalization, with NumPy and Matplotlib loaded, cost a
#: fifth of a second of CPU per kernel, and nothing in the sandbox outlives it.
KERNEL_BOOT = (
    "import json, sys\n"
    "sys.modules['debugpy'] = None\n"
    "import zmq\n"
    "_fds = json.loads(sys.argv.pop(1))\n"
    "_bind = zmq.Socket.bind\n"
    "def _bind_inherited(self, address):\n"
    "    fd = _fds.pop(address, None)\n"
    "    if fd is not None:\n"
    "        self.setsockopt(zmq.USE_FD, fd)\n"
    "    elif address.startswith('ipc://'):\n"
    "        raise RuntimeError('the grader did not provide a socket for ' + address)\n"
    "    return _bind(self, address)\n"
    "zmq.Socket.bind = _bind_inherited\n"
    "sys.argv[0] = 'ipykernel_launcher'\n"
    "from ipykernel.kernelapp import launch_new_instance\n"
    "launch_new_instance()\n"
    "sys.__stdout__.flush()\n"
    "sys.__stderr__.flush()\n"
    "import os\n"
    "os._exit(0)\n"
)
CHANNELS = ("shell", "iopub", "stdin", "control", "hb")
#: The kernel's options after its connection file.
KERNEL_OPTIONS = ("--HistoryManager.hist_file=:memory:",)


class SandboxKernelManager(AsyncKernelManager):
    """Starts the kernel in the current submission's sandbox."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        spec = current_spec()
        self.transport = "ipc"
        self.ip = os.path.join(spec.ipc_dir, "kernel")
        self.connection_file = os.path.join(spec.ipc_dir, "kernel.json")

    def _listening_sockets(self, inside_ip: str) -> dict[str, int]:
        """Bind every channel's socket in the host's own IPC folder; ``{inside address: fd}``."""
        found: dict[str, int] = {}
        try:
            for channel in CHANNELS:
                port = getattr(self, f"{channel}_port")
                path = f"{self.ip}-{port}"
                if os.path.lexists(path):  # a stale one of ours: the folder is the grader's alone
                    os.unlink(path)
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                try:
                    sock.bind(path)
                    sock.listen(128)
                except OSError:
                    sock.close()
                    raise
                found[f"ipc://{inside_ip}-{port}"] = sock.detach()
        except BaseException:
            for fd in found.values():
                os.close(fd)
            raise
        return found

    async def _async_launch_kernel(self, kernel_cmd: list[str], **kw) -> None:
        spec = current_spec()
        os.chmod(spec.ipc_dir, 0o700)  # the grader's sockets and connection file: nobody else's
        python = sys.executable  # the venv path (not resolved), so the venv is used
        inside = spec.isolation == sandbox.ISOLATION_BWRAP
        # inside, the sockets are labelled /ipc/...: the kernel learns nothing of the host's paths
        inside_ip = bubblewrap.SANDBOX_IPC + "/kernel" if inside else self.ip
        listeners = self._listening_sockets(inside_ip)
        info = {
            "transport": "ipc",
            "ip": inside_ip,
            "key": self.session.key.decode(),
            "signature_scheme": self.session.signature_scheme,
            "kernel_name": "",
            **{f"{channel}_port": getattr(self, f"{channel}_port") for channel in CHANNELS},
        }
        log_path = os.path.join(os.path.dirname(spec.ipc_dir), "kernel.log")
        if warm_kernels.enabled(spec):
            try:
                server = warm_kernels.server_for(spec, log_path, KERNEL_BOOT)
                process = server.start_kernel(listeners, info, list(KERNEL_OPTIONS))
            except warm_kernels.ForkServerFailed as error:  # its sandbox is gone: the kernel starts on its own
                self.log.warning("No kernel from the fork server (%s); starting one on its own", error)
                warm_kernels.stop()
            except BaseException:
                for fd in listeners.values():
                    os.close(fd)
                raise
            else:
                for fd in listeners.values():
                    os.close(fd)
                self.provisioner.process = process  # jupyter_client's provisioner polls and kills it
                self.provisioner.pgid = None  # never signalled by the host: through the fork server
                self._reconcile_connection_info(self.provisioner.connection_info)
                return
        argv = [
            python,
            "-P",
            "-c",
            KERNEL_BOOT,
            json.dumps(listeners),
            "-f",
            sandbox.data_path(spec, "kernel-inside.json"),
            *KERNEL_OPTIONS,
        ]
        try:
            command = sandbox.command(
                argv, spec, data={"kernel-inside.json": json.dumps(info).encode()}, keep_fds=tuple(listeners.values())
            )
        except BaseException:
            for fd in listeners.values():
                os.close(fd)
            raise
        log = open(log_path, "ab")
        kw.update(sandbox.popen_options(spec, command, log))
        try:
            await super()._async_launch_kernel(command.argv, **kw)
        finally:
            log.close()
            command.close()  # the kernel holds its own copies

    def _create_connected_socket(self, channel: str, identity: bytes | None = None) -> zmq.Socket:
        sock = super()._create_connected_socket(channel, identity)
        sock.sndtimeo = SEND_TIMEOUT_MS  # the control channel too: an interrupt never blocks the grader
        return sock

    async def interrupt_kernel(self) -> bool:
        """Interrupt by a control message: the kernel signals itself (works in a pid namespace).

        A kernel whose control channel takes no message in :data:`SEND_TIMEOUT_MS` is not
        interrupted (the caller then finds that it does not answer, and restarts it).
        """
        msg = self.session.msg("interrupt_request", content={})
        self._connect_control_socket()
        try:
            self.session.send(self._control_socket, msg)
        except zmq.Again:
            self.log.warning("The kernel's control channel takes no message; not interrupted")
            return False
        return True

    async def _async_kill_kernel(self, restart: bool = False) -> None:
        await super()._async_kill_kernel(restart=restart)
        _kill_leftovers()

    async def _async_cleanup_resources(self, restart: bool = False) -> None:
        await super()._async_cleanup_resources(restart=restart)
        _kill_leftovers()


def _kill_leftovers() -> None:
    """Every process the stopped kernel left: the fork server kills them (it stays for the next
    kernel); without one, every process carrying the submission's marker."""
    server = warm_kernels.current()
    if server is not None and server.spec == current_spec():
        server.kill_all()
    else:
        kill_marked_processes(current_spec().marker)


def _error_output(ename: str, evalue: str) -> NotebookNode:
    return NotebookNode(output_type="error", ename=ename, evalue=evalue, traceback=[f"{ename}: {evalue}"])


class SandboxExecute(Execute):
    """nbgrader's Execute, hardened for hostile submissions."""

    interrupt_grace = Float(5.0, help="Seconds a timed-out cell gets to stop after the interrupt.").tag(config=True)
    notebook_timeout = Integer(600, help="Seconds of execution for a whole notebook.").tag(config=True)
    max_output_bytes = Integer(200_000, help="Output text kept per cell; the rest is dropped.").tag(config=True)
    raise_on_iopub_timeout = Bool(False).tag(config=True)

    def __init__(self, *args, **kwargs):
        kwargs["kernel_manager_class"] = SandboxKernelManager
        super().__init__(*args, **kwargs)
        self._deadline = None
        self._current_index = 0
        self._output_bytes: dict[int, int] = {}
        self._channel_broken = False

    def _bound_sends(self) -> None:
        """Every channel the grader sends on gives up after :data:`SEND_TIMEOUT_MS` (``zmq.Again``)."""
        for name in ("shell", "control", "stdin"):
            channel = getattr(self.kc, f"_{name}_channel", None)
            if channel is not None and getattr(channel, "socket", None) is not None:
                channel.socket.sndtimeo = SEND_TIMEOUT_MS

    async def async_start_new_kernel_client(self):
        kc = await super().async_start_new_kernel_client()
        self._bound_sends()
        return kc

    start_new_kernel_client = run_sync(async_start_new_kernel_client)

    def preprocess(self, nb, resources=None, km=None):
        self._deadline = time.monotonic() + self.notebook_timeout
        self._output_bytes = {}
        nb, resources = super().preprocess(nb, resources, km)
        stderr_as_output(nb)  # the verdict is the outcome, not the stream (the student's check agrees)
        return nb, resources

    async def _kernel_responds(self, grace: float) -> bool:
        """Whether the kernel answers a kernel_info request within ``grace`` seconds."""
        try:
            msg_id = self.kc.kernel_info()
        except zmq.Again:  # its channel takes no message
            self._channel_broken = True
            return False
        deadline = time.monotonic() + grace
        while (left := deadline - time.monotonic()) > 0:
            try:  # wait_for: a receive can block after a poll said "ready"
                msg = await asyncio.wait_for(self.kc.shell_channel.get_msg(timeout=left), left + 0.5)
            except Exception:  # noqa: BLE001 - a kernel that breaks its channel: no reply
                return False
            if msg["parent_header"].get("msg_id") == msg_id:
                return True
        return False

    async def _run_quietly(self, source: str, timeout: float) -> None:
        """Execute ``source`` in the kernel and wait for its reply (outputs discarded)."""
        try:
            msg_id = self.kc.execute(source, store_history=False)
        except zmq.Again:
            raise ChannelBroken("the restarted kernel takes no message") from None
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                msg = await asyncio.wait_for(self.kc.shell_channel.get_msg(timeout=left), left + 0.5)
            except Exception:  # noqa: BLE001 - a kernel that breaks its channel: nothing to drain
                return
            if msg["parent_header"].get("msg_id") == msg_id:
                return

    async def _restart(self) -> None:
        """A fresh kernel, with the grader's snapshot and the read-only setup cells run again.

        The student's cells before this point are not re-run (one of them
        may be the reason for the restart), so what they defined is gone.
        """
        await self.km.restart_kernel(now=True)
        if self._channel_broken:  # the old client's sockets stay stuck: a new client for the new kernel
            # (the old one is dropped, not stopped: stopping joins its heartbeat thread, which can block)
            self._channel_broken = False
            self.kc = self.km.client()
            await ensure_async(self.kc.start_channels())
            self._bound_sends()
        # not kc.wait_for_ready(): it also reads the output channel, which nbclient's
        # output poller may be reading at this moment (two readers block for ever)
        deadline = time.monotonic() + self.startup_timeout
        while not await self._kernel_responds(2.0):
            if time.monotonic() > deadline:
                raise DeadKernelError("the restarted kernel does not answer")
        for cell in self.nb.cells[: self._current_index]:
            meta = cell.get("metadata", {}).get("nbgrader", {})
            setup = meta.get("locked") and not meta.get("grade") and not meta.get("solution")
            if (
                cell.cell_type == "code"
                and (setup or tamper_probe.is_probe(cell.source))
                and not tamper_probe.is_check(cell.source)
            ):
                await self._run_quietly(cell.source, self.timeout or 60)

    async def _async_handle_timeout(self, timeout, cell=None):
        self.log.warning("Cell timed out after %s s; interrupting the kernel", timeout)
        if not await self.km.interrupt_kernel():
            self._channel_broken = True
        responds = await self._kernel_responds(self.interrupt_grace)
        broken = self._channel_broken
        if not responds:
            self.log.warning("The kernel ignored the interrupt; restarting it")
            await self._restart()
        if broken:  # not a slow cell: the kernel wrote over its own channels
            return {
                "content": {
                    "status": "error",
                    "ename": "KernelChannelBroken",
                    "evalue": "the kernel's channel to the grader broke while running this cell "
                    "(its code wrote over descriptors of the kernel's own)",
                    "traceback": ["KernelChannelBroken: the kernel's channel to the grader broke"],
                }
            }
        return {
            "content": {
                "status": "error",
                "ename": "CellTimeoutError",
                "evalue": f"the cell ran longer than {timeout} s and was stopped",
                "traceback": [f"CellTimeoutError: the cell ran longer than {timeout} s"],
            }
        }

    async def async_execute_cell(self, cell, cell_index, execution_count=None, store_history=True):
        if cell.cell_type != "code" or not cell.source.strip():
            return await super().async_execute_cell(cell, cell_index, execution_count, store_history)
        self._current_index = cell_index
        cap = memory_cap.memory_cap(current_spec().marker)
        if time.monotonic() > self._deadline:
            cell.outputs = [
                _error_output("NotebookTimeLimit", f"not run: the notebook used up its {self.notebook_timeout} s")
            ]
            return cell
        limit = (
            (self._get_timeout(cell) or self.notebook_timeout)
            + self.interrupt_grace
            + 2 * self.startup_timeout
            + 2 * self.iopub_timeout
            + 30
        )
        try:
            # the watchdog: whatever nbclient waits for, a cell ends
            try:
                return await asyncio.wait_for(
                    super().async_execute_cell(cell, cell_index, execution_count, store_history), limit
                )
            except zmq.Again:  # the kernel broke its end of a channel: as dead as a kernel gets
                self._channel_broken = True
                raise ChannelBroken("a channel to the kernel takes no message") from None
        except TimeoutError:
            self.log.warning("Cell %s exceeded the grader's watchdog; restarting the kernel", cell_index)
            cell.outputs.append(_error_output("CellTimeoutError", "the grader stopped this cell"))
            await self._restart()
            return cell
        except DeadKernelError as error:
            self.log.warning("The kernel died in cell %s; restarting it", cell_index)
            if cap is not None and (cap.check() or cap.reached > cap.charged):
                cap.charged = cap.reached  # this cell's processes were stopped at the cap, not the kernel's fault alone
                cell.outputs.append(
                    _error_output(
                        "MemoryCapReached",
                        f"the processes of this submission together held more than "
                        f"{cap.total_memory_mb} MB while this cell ran; all were stopped",
                    )
                )
            elif isinstance(error, ChannelBroken):
                cell.outputs.append(
                    _error_output(
                        "KernelChannelBroken",
                        "the kernel's channel to the grader broke while running this cell "
                        "(its code wrote over descriptors of the kernel's own)",
                    )
                )
            else:
                cell.outputs.append(
                    _error_output(
                        "KernelDied",
                        "the Python process stopped while running this cell "
                        "(it exited, e.g. os._exit, or was killed at the memory limit)",
                    )
                )
            await self._restart()
            return cell

    def _get_timeout(self, cell):
        """The cell time limit, never beyond the notebook's deadline."""
        timeout = super()._get_timeout(cell)
        if self._deadline is None:
            return timeout
        left = max(1, int(self._deadline - time.monotonic()))
        return left if timeout is None else min(timeout, left)

    execute_cell = run_sync(async_execute_cell)  # nbconvert calls the sync name

    def output(self, outs, msg, display_id, cell_index):
        """Keep at most ``max_output_bytes`` of printed and displayed output per cell.

        A cell's error and its value (``execute_result``, which may carry
        partial credit) are always kept whole. No cap applies to a single message: the
        grading job receives each one whole before this runs (see autograder/README.md).
        """
        content = msg.get("content", {})
        size = len(str(content.get("text", ""))) + len(str(content.get("data", "")))
        used = self._output_bytes.get(cell_index, 0)
        self._output_bytes[cell_index] = used + size
        if used + size > self.max_output_bytes and msg["msg_type"] not in ("error", "execute_result"):
            if used <= self.max_output_bytes:
                note = NotebookNode(output_type="stream", name="stdout", text="\n[output truncated by the grader]\n")
                outs.append(note)
                return note
            return None
        return super().output(outs, msg, display_id, cell_index)
