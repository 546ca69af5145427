"""Kernels forked from one warmed interpreter per submission (autograder/warm_kernels.py,
autograder/kernel_forkserver.py): each kernel starts as a fresh sandbox would, and no kernel
can bend the fork server that the next notebook's kernel comes from.

The "kernels" here run a small boot code instead of ipykernel: it reports what it sees on a
socket the test hands in, the way the real boot code gets its listening sockets. The grading
runs of the hostile class and the rehearsal cohort start real ipykernel kernels this way.
"""

from __future__ import annotations

import dataclasses
import json
import os
import select
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from autograder import kernel_environment, sandbox, warm_kernels
from autograder.bubblewrap import SANDBOX_HOME, SANDBOX_WORKDIR
from autograder.submission_processes import kill_marked_processes

#: The test kernels' boot code: ``report(obj)`` sends its findings to the test, then it runs the
#: code given after ``-c`` in its arguments (``sys.argv``: the sockets, ``-f`` and the connection
#: file, then those), as the real boot code runs ipykernel.
BOOT = """
import json, os, socket, sys
_fds = json.loads(sys.argv[1])
_channel = socket.socket(fileno=_fds["report"])
def report(found):
    _channel.sendall(json.dumps(found).encode())
    _channel.close()
exec(sys.argv[sys.argv.index("-c", 1) + 1])
"""


def bubblewrap_spec(folder, marker: str, uid: int | None = None, files: dict[str, str] | None = None):
    """A bubblewrap sandbox for the submitted ``files`` (``{name: text}``), its folders under ``folder``."""
    (folder / "work").mkdir(parents=True)
    (folder / "ipc").mkdir()
    for name, text in (files or {}).items():
        (folder / "work" / name).write_text(text)
    return sandbox.SandboxSpec(
        sandbox.ISOLATION_BWRAP,
        str(folder / "work"),
        str(folder / "ipc"),
        f"{marker}-{os.getpid()}",
        readonly=kernel_environment.readonly_paths(),
        uid=uid,
    )


@pytest.fixture
def bubblewrap():
    """The fork server runs in bubblewrap sandboxes only."""
    if sandbox.detect_isolation()[0] != sandbox.ISOLATION_BWRAP:
        pytest.skip("the fork server runs in bubblewrap only")


@pytest.fixture
def server(tmp_path, bubblewrap):
    files = {"01_activations.ipynb": '{"submitted": true}', "mnist_results.json": "[1, 2, 3]"}
    spec = bubblewrap_spec(tmp_path, "unit-fork", sandbox.sandbox_uid(0, sandbox.ISOLATION_BWRAP), files)
    started = warm_kernels.server_for(spec, str(tmp_path / "kernel.log"), BOOT)
    yield started
    warm_kernels.stop()
    assert not kill_marked_processes(spec.marker), "a process of the sandbox outlived the fork server"


def run_kernel(server: warm_kernels.ForkServer, code: str, timeout: float = 60) -> tuple[dict, int]:
    """Fork a kernel running ``BOOT`` then ``code``; what it reported, and its exit status."""
    here, there = socket.socketpair()
    try:
        kernel = server.start_kernel({"report": there.fileno()}, {"unused": True}, ["-c", code])
    finally:
        there.close()
    data = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if select.select([here], [], [], 0.5)[0]:
            chunk = here.recv(1 << 16)
            if not chunk:
                break
            data += chunk
    here.close()
    return json.loads(data or b"null"), kernel.wait(timeout=timeout)


LOOK_AROUND = f"""
preloaded = all(name in sys.modules for name in ("numpy.random", "matplotlib.pyplot", "ipykernel.kernelapp"))
import linecache, numpy
def stack_of(frame):
    while frame is not None:
        yield frame
        frame = frame.f_back
def listing(folder):
    return sorted(os.listdir(folder))
report({{
    "work": {{name: open(name).read() for name in listing("{SANDBOX_WORKDIR}")}},
    "tmp": listing("/tmp"),
    "home": listing("{SANDBOX_HOME}"),
    "others": sorted(int(p) for p in os.listdir("/proc") if p.isdigit() and int(p) not in (1, os.getpid())),
    "parent": os.getppid(),
    "draw": int(numpy.random.randint(2**31)),
    "preloaded": preloaded,
    "stack": [(frame.f_code.co_filename, len(linecache.getlines(frame.f_code.co_filename)))
              for frame in stack_of(sys._getframe())],
}})
"""

MAKE_A_MESS = f"""
import subprocess, stat
with open("01_activations.ipynb", "w") as handle:
    handle.write("overwritten")
open("forged_results.json", "w").write("{{}}")
os.makedirs("/tmp/locked/inner")
open("/tmp/locked/inner/file", "w").write("x")
os.chmod("/tmp/locked/inner", 0)
os.chmod("/tmp/locked", 0)
open("{SANDBOX_HOME}/.hidden", "w").write("x")
daemon = subprocess.Popen(["sleep", "600"], start_new_session=True)
report({{"daemon": daemon.pid}})
if os.fork() == 0:  # a grandchild left behind, in a session of its own
    os.setsid()
    import time
    time.sleep(600)
"""


def test_every_kernel_starts_with_the_submitted_files_only_and_no_process_left(server):
    first, status = run_kernel(server, LOOK_AROUND)
    assert status == 0
    assert first["work"] == {"01_activations.ipynb": '{"submitted": true}', "mnist_results.json": "[1, 2, 3]"}
    # /tmp holds only the folders leading to read-only binds of host paths under /tmp (a checkout there)
    binds = sorted({path.split("/")[2] for path in server.spec.readonly if path.startswith("/tmp/")})
    assert first["tmp"] == binds and first["home"] == []
    assert first["others"] == [] and first["parent"] == 1
    assert first["preloaded"], "the kernel's modules are imported once, in the fork server"
    # the boot code runs at the top level, as in `python -c`: no frame of the fork server, no source to quote
    assert first["stack"] == [["<string>", 0], ["<string>", 0]]

    mess, status = run_kernel(server, MAKE_A_MESS)
    assert status == 0 and mess["daemon"] > 1

    second, status = run_kernel(server, LOOK_AROUND)
    assert status == 0
    assert second["work"] == first["work"]
    assert second["tmp"] == binds and second["home"] == []
    assert second["others"] == [], "a process of the previous kernel survived into the next one"
    assert second["draw"] != first["draw"], "forked kernels must not share NumPy's random stream"


BEND_THE_SERVER = """
import ctypes, signal
sent = {}
for signum in (signal.SIGKILL, signal.SIGSTOP, signal.SIGTERM, signal.SIGINT, signal.SIGUSR1, signal.SIGSEGV):
    try:
        os.kill(1, signum)
        sent[signal.Signals(signum).name] = "sent"
    except OSError as error:
        sent[signal.Signals(signum).name] = type(error).__name__
readable = {}
for name in ("mem", "environ", "maps", "fd", "cmdline"):
    try:
        if name == "fd":
            os.listdir("/proc/1/fd")
        else:
            with open("/proc/1/" + name, "rb") as handle:
                handle.read(16)
        readable[name] = True
    except OSError:
        readable[name] = False
for target in ("/proc/1/mem", "/proc/1/fd/0"):
    try:
        with open(target, "wb") as handle:
            handle.write(b"x")
        readable[target + " written"] = True
    except OSError:
        readable[target + " written"] = False
libc = ctypes.CDLL(None, use_errno=True)
attached = libc.ptrace(16, 1, 0, 0)  # PTRACE_ATTACH
report({"sent": sent, "readable": readable, "ptrace": attached})
"""


def test_a_kernel_can_neither_stop_read_nor_trace_the_fork_server(server):
    found, status = run_kernel(server, BEND_THE_SERVER)
    assert status == 0
    assert found["ptrace"] == -1
    assert not any(value for name, value in found["readable"].items() if name != "cmdline"), found["readable"]
    time.sleep(0.3)  # a signal that acted would have acted by now
    assert server.alive()
    after, status = run_kernel(server, LOOK_AROUND)
    assert status == 0 and after["others"] == [] and after["parent"] == 1


def test_a_kernels_exit_status_and_the_loss_of_the_server_reach_the_grader(server):
    found, status = run_kernel(server, "report({}); os._exit(3)")
    assert status == 3

    here, there = socket.socketpair()
    try:
        kernel = server.start_kernel({"report": there.fileno()}, {}, ["-c", "report({}); import time; time.sleep(600)"])
    finally:
        there.close()
    assert kernel.poll() is None
    kill_marked_processes(server.spec.marker)  # as the memory cap stops every process of a submission
    deadline = time.monotonic() + 20
    while kernel.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    here.close()
    assert kernel.poll() == -9
    replacement = warm_kernels.server_for(server.spec, os.devnull, BOOT)
    assert replacement is not server and replacement.alive()
    again, status = run_kernel(replacement, LOOK_AROUND)
    assert status == 0 and again["others"] == []


def test_the_fork_server_preloads_every_module_the_course_notebooks_import():
    """A module the notebooks import and the fork server does not is imported again by every kernel."""
    import ast
    import json as json_module
    from pathlib import Path

    from autograder import kernel_forkserver

    imported = set()
    for path in sorted((Path(__file__).resolve().parents[1] / "solutions" / "dnn_hw").glob("*.ipynb")):
        for cell in json_module.loads(path.read_text())["cells"]:
            if cell["cell_type"] != "code":
                continue
            source = "".join(cell["source"])
            try:
                tree = ast.parse(
                    "\n".join(line for line in source.splitlines() if not line.lstrip().startswith(("%", "!")))
                )
            except SyntaxError:
                continue
            for node in ast.walk(tree):
                if isinstance(node, ast.ImportFrom) and node.module:
                    imported.add(node.module)
                elif isinstance(node, ast.Import):
                    imported.update(alias.name for alias in node.names)
    third_party = {name for name in imported if name.split(".")[0] in ("dnn_course", "numpy", "matplotlib", "IPython")}
    missing = sorted(name for name in third_party if name not in kernel_forkserver.PRELOAD and name != "dnn_course")
    assert not missing, f"add to kernel_forkserver.PRELOAD: {missing}"


def test_a_request_the_fork_server_cannot_carry_out_is_refused_with_its_reason_and_it_serves_on(server):
    here, there = socket.socketpair()
    try:
        server._send({"op": "start", "addresses": ["report", "extra"], "argv": [], "connection": {}}, (there.fileno(),))
        with pytest.raises(warm_kernels.ForkServerFailed, match="2 addresses but 1 sockets"):
            server._answer("started", warm_kernels.ANSWER_TIMEOUT)
    finally:
        there.close()
        here.close()
    assert server.alive()
    found, status = run_kernel(server, LOOK_AROUND)
    assert status == 0 and found["others"] == []


LEAVE_IPC_OBJECTS = """
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
made = {"shm": libc.shmget(4242, 4096, 0o1666), "sem": libc.semget(4243, 1, 0o1666), "msg": libc.msgget(4244, 0o1666)}
mq = libc.mq_open(b"/channel", 0o100 | 0o2, 0o666, None)  # O_CREAT | O_RDWR
report({"made": made, "mq": mq, "mq_errno": ctypes.get_errno()})
"""

FIND_IPC_OBJECTS = """
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
report({"shm": libc.shmget(4242, 0, 0), "sem": libc.semget(4243, 0, 0), "msg": libc.msgget(4244, 0),
        "tables": [len(open("/proc/sysvipc/" + kind).read().splitlines()) - 1 for kind in ("shm", "sem", "msg")]})
"""


def test_no_ipc_object_of_a_kernel_reaches_the_next_one(server):
    """System V objects outlive their maker in the sandbox's IPC namespace: removed before each kernel;
    POSIX message queues cannot be listed: none may be made."""
    made, status = run_kernel(server, LEAVE_IPC_OBJECTS)
    assert status == 0 and all(ipc_id >= 0 for ipc_id in made["made"].values()), made
    assert made["mq"] == -1, "a kernel made a POSIX message queue, which the next kernel could open"
    found, status = run_kernel(server, FIND_IPC_OBJECTS)
    assert status == 0
    assert found == {"shm": -1, "sem": -1, "msg": -1, "tables": [0, 0, 0]}, found


def printed_by_a_grading_kernel(spec: sandbox.SandboxSpec, code: str) -> str:
    """What ``code`` prints in a real ipykernel kernel that the grader's kernel manager starts for ``spec``."""
    import asyncio

    from autograder import kernel

    kernel.configure(spec)

    async def run() -> str:
        manager = kernel.SandboxKernelManager(kernel_name="python3")
        await manager.start_kernel()
        client = manager.client()
        client.start_channels()
        try:
            await client.wait_for_ready(timeout=60)
            outputs = []
            await client.execute_interactive(code, timeout=30, output_hook=lambda msg: outputs.append(msg))
            return "".join(msg["content"].get("text", "") for msg in outputs)
        finally:
            client.stop_channels()
            await manager.shutdown_kernel(now=True)

    return asyncio.run(run())


def test_a_kernel_starts_on_its_own_when_the_fork_server_fails(tmp_path, monkeypatch, bubblewrap):
    """The grader's kernel manager: a fork server that dies while warming up costs nothing but time."""
    broken = tmp_path / "broken_forkserver.py"
    broken.write_text("import os\nos._exit(3)\n")
    monkeypatch.setattr(warm_kernels, "SOURCE", broken)
    spec = bubblewrap_spec(tmp_path, "unit-cold", sandbox.sandbox_uid(0, sandbox.ISOLATION_BWRAP))
    printed = printed_by_a_grading_kernel(
        spec, "import os, sys; print(os.getppid(), 'matplotlib.pyplot' in sys.modules, 6 * 7)"
    )
    # a kernel of its own (nothing preloaded), child of bubblewrap's init, and it works
    assert printed.split() == ["1", "False", "42"]
    assert warm_kernels.current() is None
    assert not kill_marked_processes(spec.marker)


def test_a_forked_ipykernel_kernel_imports_nothing_the_fork_server_could_have(tmp_path, bubblewrap):
    """A real kernel forked by the grader's kernel manager: what its start-up and a cell import that the
    fork server did not is only what cannot be imported before a shell exists (PRELOAD is complete), and it
    has no debugger, as a kernel started on its own."""
    spec = bubblewrap_spec(tmp_path, "unit-preload", sandbox.sandbox_uid(0, sandbox.ISOLATION_BWRAP))
    try:
        printed = printed_by_a_grading_kernel(
            spec,
            "import sys, json, numpy.testing, ipykernel.debugger\n"
            "print(json.dumps([sorted(sys.modules), ipykernel.debugger._is_debugpy_available]))",
        )
    finally:
        warm_kernels.stop()
    in_kernel, debugger = json.loads(printed)
    assert debugger is False
    warmed = f"import json, runpy, sys\nrunpy.run_path({str(warm_kernels.SOURCE)!r})['warm']()\nprint(json.dumps(sorted(sys.modules)))"
    environment = {**sandbox.sandbox_environment(spec), "HOME": str(tmp_path), "MPLCONFIGDIR": str(tmp_path / "mpl")}
    server_modules = subprocess.run(
        [sys.executable, "-P", "-c", warmed], capture_output=True, text=True, check=True, env=environment
    ).stdout
    imported_after_fork = set(in_kernel) - set(json.loads(server_modules))
    imported_after_fork -= {"__autograder_state__", "__main__"}
    assert not imported_after_fork, f"add to kernel_forkserver.PRELOAD: {sorted(imported_after_fork)}"


def test_the_font_list_built_once_per_run_is_the_one_a_fork_server_would_build_and_is_used(
    tmp_path, monkeypatch, bubblewrap
):
    """Matplotlib's font list, built in a sandbox with no submission: the fonts a fork server finds by itself,
    and a fork server handed it loads it instead of scanning the fonts again."""
    built = warm_kernels.build_font_list(bubblewrap_spec(tmp_path / "fonts", "unit-fonts"))
    assert built is not None
    name, text = built
    handed = json.loads(text)
    assert name.startswith("fontlist-v") and handed["ttflist"]

    spec = bubblewrap_spec(tmp_path / "own", "unit-own-fonts", sandbox.sandbox_uid(0, sandbox.ISOLATION_BWRAP))
    own_list = "import matplotlib.font_manager as fm\nreport(sorted({f.fname for f in fm.fontManager.ttflist}))"
    found, status = run_kernel(warm_kernels.server_for(spec, str(tmp_path / "own.log"), BOOT), own_list)
    warm_kernels.stop()
    import matplotlib  # the list names Matplotlib's own fonts relative to its data folder

    expected = {os.path.join(matplotlib.get_data_path(), font["fname"]) for font in handed["ttflist"]}
    assert status == 0 and found == sorted(expected)

    marked = dict(handed, ttflist=[dict(handed["ttflist"][0], name="Handed In Sans")] + handed["ttflist"])
    monkeypatch.setattr(warm_kernels, "FONT_LIST", (name, json.dumps(marked).encode()))
    spec = bubblewrap_spec(tmp_path / "given", "unit-given-fonts", sandbox.sandbox_uid(0, sandbox.ISOLATION_BWRAP))
    names = "import matplotlib.font_manager as fm\nreport([f.name for f in fm.fontManager.ttflist][:1])"
    found, status = run_kernel(warm_kernels.server_for(spec, str(tmp_path / "given.log"), BOOT), names)
    warm_kernels.stop()
    assert status == 0 and found == ["Handed In Sans"]


PLANT = """
planted = {}
for folder in ("/", "/etc", "/home", "/dev", "/dev/shm", "/home/student", "/tmp", "/submission"):
    try:
        with open(os.path.join(folder, "planted"), "w") as handle:
            handle.write("x")
        planted[folder] = True
    except OSError:
        planted[folder] = False
report(planted)
"""


@pytest.mark.parametrize("grader", ["root", "not root"])
def test_a_kernel_can_write_only_the_three_folders_the_fork_server_empties(tmp_path, monkeypatch, grader, bubblewrap):
    """As root the sandbox's user is an unprivileged uid; otherwise a user namespace makes it the owner
    of the root folder bubblewrap builds: either way only the working folder, /tmp and home are writable."""
    from autograder import bubblewrap

    if grader == "not root":
        monkeypatch.setattr(bubblewrap.os, "geteuid", lambda: 1000)
    spec = bubblewrap_spec(
        tmp_path, "unit-plant", sandbox.sandbox_uid(0, sandbox.ISOLATION_BWRAP) if grader == "root" else None
    )
    try:
        server = warm_kernels.server_for(spec, str(tmp_path / "kernel.log"), BOOT)
        planted, status = run_kernel(server, PLANT)
    finally:
        warm_kernels.stop()
    assert status == 0
    assert [folder for folder, written in planted.items() if written] == ["/home/student", "/tmp", "/submission"]


def test_the_fork_server_refuses_a_sandbox_where_a_kernel_could_leave_files_elsewhere(
    tmp_path, monkeypatch, bubblewrap
):
    """Its backstop: were the root folder writable (a sandbox built without --remount-ro), no kernel is forked."""
    from autograder import bubblewrap

    monkeypatch.setattr(bubblewrap.os, "geteuid", lambda: 1000)
    original = bubblewrap.bwrap_command

    def without_read_only_root(*args, **kwargs):
        command = original(*args, **kwargs)
        at = command.index("--remount-ro")
        return command[:at] + command[at + 4 :]

    monkeypatch.setattr(sandbox, "bwrap_command", without_read_only_root)
    spec = bubblewrap_spec(tmp_path, "unit-rw")
    log = tmp_path / "kernel.log"
    with pytest.raises(warm_kernels.ForkServerFailed, match="ended"):
        warm_kernels.server_for(spec, str(log), BOOT)
    assert "the fork server refuses to start: /, /etc, /home, /dev" in log.read_text()
    assert warm_kernels.current() is None


LOWER_THE_SERVERS_LIMITS = """
import resource
resource.prlimit(1, resource.RLIMIT_NOFILE, (12, 12))
os.setpriority(os.PRIO_PROCESS, 1, 19)
report({})
"""


def test_a_kernel_that_lowers_the_fork_servers_limits_gets_no_successor_from_it(server):
    """Limits and priority a kernel set on process 1 would be every later kernel's: the fork server
    refuses, and the grader starts the next kernels on their own (see the test above)."""
    found, status = run_kernel(server, LOWER_THE_SERVERS_LIMITS)
    assert status == 0
    with pytest.raises(warm_kernels.ForkServerFailed, match="changed the fork server's limits, nice"):
        run_kernel(server, LOOK_AROUND)


ADD_KEYS = """
import ctypes, platform
libc = ctypes.CDLL(None, use_errno=True)
add_key = {"x86_64": 248, "aarch64": 217}[platform.machine()]
keyctl = {"x86_64": 250, "aarch64": 219}[platform.machine()]
persistent = libc.syscall(keyctl, 22, -1, -4)
added = [libc.syscall(add_key, b"user", b"note-" + str(ring).encode(), b"hidden test", 11, ring)
         for ring in (-4, -5, persistent)]
report({"added": added})
"""

FIND_KEYS = """
import ctypes, platform
libc = ctypes.CDLL(None, use_errno=True)
keyctl = {"x86_64": 250, "aarch64": 219}[platform.machine()]
persistent = libc.syscall(keyctl, 22, -1, -4)
found = [libc.syscall(keyctl, 10, ring, b"user", b"note-" + str(ring).encode(), 0) for ring in (-4, -5, persistent)]
report({"found": found})
"""


def test_keys_a_submission_leaves_in_its_slot_users_keyrings_never_reach_the_next_one(tmp_path, bubblewrap):
    """As root, the submissions graded one after another in a slot run as the same uid, whose keyrings
    the kernel keeps across processes: the launcher of every sandbox empties them (KEYCTL_SEARCH of
    each key then fails)."""
    import platform

    if os.geteuid() != 0 or platform.machine() not in sandbox.KEYCTL_SYSCALL:
        pytest.skip("a uid of its own per slot only when the grader is root")
    found = {}
    for student, code in (("first", ADD_KEYS), ("next", FIND_KEYS)):
        spec = bubblewrap_spec(
            tmp_path / student, f"unit-keys-{student}", sandbox.sandbox_uid(0, sandbox.ISOLATION_BWRAP)
        )
        try:
            found[student], status = run_kernel(warm_kernels.server_for(spec, os.devnull, BOOT), code)
        finally:
            warm_kernels.stop()
        assert status == 0
    user, session, persistent = found["first"]["added"]
    assert user > 0 and session > 0, found  # the persistent keyring exists only where the kernel has it
    assert found["next"]["found"] == [-1, -1, -1], found


def test_read_only_host_folders_under_tmp_survive_the_reset(tmp_path, bubblewrap):
    """A course checked out under the host's /tmp is bound read-only inside the sandbox's /tmp: the
    fork server empties /tmp around it (it once failed there, and every kernel started on its own)."""
    course = tmp_path / "checkout" / "dnn_course"
    course.mkdir(parents=True)
    (course / "module.py").write_text("VALUE = 1\n")
    assert str(course).startswith("/tmp/")
    spec = bubblewrap_spec(tmp_path / "sandbox", "unit-under-tmp", sandbox.sandbox_uid(0, sandbox.ISOLATION_BWRAP))
    spec = dataclasses.replace(spec, readonly=spec.readonly + (str(course),))
    code = f"open('/tmp/mine', 'w').write('x'); report({{'course': open('{course}/module.py').read(), 'tmp': os.listdir('/tmp')}})"
    try:
        server = warm_kernels.server_for(spec, os.devnull, BOOT)
        first, status = run_kernel(server, code)
        second, status_again = run_kernel(server, code)
    finally:
        warm_kernels.stop()
    assert status == status_again == 0
    assert first["course"] == second["course"] == "VALUE = 1\n"
    assert second["tmp"] == first["tmp"]  # its own file again, next to the folder leading to the bind


def test_a_grading_kernel_maps_the_runs_decoded_data(tmp_path, monkeypatch, bubblewrap):
    """With the run's decoded copy (as a local grading run makes it), a real grading kernel's
    ``load_dataset`` maps it, read-only bound, instead of decoding the files: the arrays are backed by
    a copy-on-write mapping and equal the decoded ones, and the kernel cannot change the copy."""
    from autograder.grading_settings import GradingSettings
    from dnn_course import dataset_files

    monkeypatch.setattr(kernel_environment, "DECODED_DATA", kernel_environment.decode_datasets(tmp_path))
    (tmp_path / "work").mkdir()
    (tmp_path / "ipc").mkdir()
    spec = kernel_environment.grading_spec(
        sandbox.ISOLATION_BWRAP, str(tmp_path / "work"), str(tmp_path / "ipc"), f"unit-decoded-{os.getpid()}",
        GradingSettings(), slot=0,
    )  # fmt: skip
    try:
        printed = printed_by_a_grading_kernel(
            spec,
            "import json, mmap, os\n"
            "from dnn_course.datasets import load_dataset\n"
            "(x, y), (xt, yt) = load_dataset('mnist', verbose=False)\n"
            "x[0, 0, 0] = 9.0\n"
            "print(json.dumps([type(x.base).__name__, float(x[:5].sum()), int(y[:50].sum()), int(yt.sum()),\n"
            "                  os.access(os.environ['DNN_COURSE_DECODED_DATA'], os.W_OK)]))",
        )
    finally:
        warm_kernels.stop()
    base, x_sum, y_sum, yt_sum, writable = json.loads(printed)
    found = dataset_files.read_embedded("mnist", verbose=False)
    (x, y), (_, yt) = found.train, found.test
    assert base == "mmap" and not writable
    assert x_sum == pytest.approx(float(x[:5].sum()) + 9.0 - float(x[0, 0, 0]), rel=1e-6)
    assert [y_sum, yt_sum] == [int(y[:50].sum()), int(yt.sum())]
    assert np.fromfile(Path(kernel_environment.DECODED_DATA) / "mnist-train_x.bin", np.float32, 1)[0] == x[0, 0, 0]
