"""The bubblewrap command line of one sandbox: which namespaces, which mounts.

Debian's ``bwrap`` (no root needed where unprivileged user namespaces are
allowed) makes a new user, pid, network, IPC, UTS and cgroup namespace. The
file system inside is empty except read-only binds of the system folders
(:data:`SYSTEM_READONLY`) and of the host paths the caller names (the Python
installation, the virtual environment, ...), and three size-limited ``tmpfs``
(RAM-backed) folders: the working folder :data:`SANDBOX_WORKDIR` (a fresh copy
of the submitted files, made for every start), ``/tmp`` and the home folder. Everything
else is read-only, the root folder bubblewrap builds and ``/dev`` included (in a user
namespace the sandbox's user owns them).
When the sandbox's first process dies, the kernel kills every process of the
pid namespace and the ``tmpfs`` folders are gone.

Builds argument lists only: reads nothing but whether the system folders exist
and the grader's own uid; writes nothing; starts nothing (that is
:mod:`autograder.sandbox`).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

#: Path of the working folder as seen from inside the bubblewrap sandbox.
SANDBOX_WORKDIR = "/submission"
SANDBOX_HOME = "/home/student"
#: Where the read-only data files given through descriptors appear inside.
SANDBOX_IPC = "/ipc"
#: Size of the sandbox's home folder (part of the /tmp share of the disk limit).
HOME_MB = 16

SYSTEM_READONLY = (
    "/usr",
    "/lib",
    "/lib64",
    "/lib32",
    "/bin",
    "/sbin",
    "/etc/ld.so.cache",
    "/etc/localtime",
    "/etc/nsswitch.conf",
    "/etc/passwd",
    "/etc/group",
    "/etc/fonts",
    "/etc/ssl",
)


def bwrap_command(
    argv: list[str],
    readonly: tuple[str, ...],
    disk_mb: int,
    uid: int | None,
    files: list[tuple[int, str]] = (),
    data: list[tuple[int, str]] = (),
    initial_bytes: int = 0,
    as_pid_1: bool = False,
) -> list[str]:
    """``argv`` wrapped in a bubblewrap sandbox.

    ``readonly`` are host paths visible read-only at the same place inside;
    ``disk_mb`` is all the sandbox can write (working folder 3/4, /tmp and home
    1/4); ``uid`` the unprivileged user the code runs as when the grader is root
    (None otherwise). ``files`` are ``(fd, name)``: copied into the working
    folder (writable copies); ``data`` are ``(fd, path)``: read-only files
    inside. The working folder's ``tmpfs`` holds ``initial_bytes`` of copies
    plus its share of ``disk_mb``. As root, bubblewrap needs no user namespace
    (the launcher then drops to ``uid``); otherwise a user namespace maps the
    instructor to uid 1000. ``as_pid_1``: ``argv`` itself is the pid namespace's process 1
    (no reaper of bubblewrap's): it then receives no signal from inside it has no handler for,
    and must reap the sandbox's orphans (:mod:`autograder.kernel_forkserver`).
    """
    cmd = [
        shutil.which("bwrap") or "bwrap",
        "--die-with-parent",
        "--new-session",
        "--unshare-pid",
        *(["--as-pid-1"] if as_pid_1 else []),
        "--unshare-net",
        "--unshare-ipc",
        "--unshare-uts",
        "--unshare-cgroup-try",
        "--hostname",
        "grader",
    ]
    if os.geteuid() != 0:
        cmd += ["--unshare-user", "--uid", "1000", "--gid", "1000", "--cap-drop", "ALL"]
    mb = 1024 * 1024
    work_bytes = initial_bytes + disk_mb * mb * 3 // 4
    tmp_bytes = max(disk_mb * mb // 4 - HOME_MB * mb, mb)
    cmd += [
        "--proc",
        "/proc",
        "--dev",
        "/dev",
        "--size",
        str(tmp_bytes),
        "--tmpfs",
        "/tmp",
        "--size",
        str(HOME_MB * mb),
        "--tmpfs",
        SANDBOX_HOME,
    ]
    # /etc is made by bubblewrap for the binds below, 0700 root unless told: the sandbox
    # user (as root, an unprivileged uid) could then read none of them (fontconfig printed
    # "Cannot load default config file" into every notebook importing matplotlib)
    cmd += ["--perms", "0755", "--dir", "/etc"]
    for path in SYSTEM_READONLY:
        if os.path.exists(path):
            cmd += ["--ro-bind", path, path]
    parents = sorted(
        {str(parent) for path in readonly for parent in Path(path).parents if str(parent) != "/"},
        key=lambda p: (p.count(os.sep), p),
    )
    for parent in parents:  # traversable by the sandbox user, whatever the host's modes
        cmd += ["--perms", "0755", "--dir", parent]
    for path in readonly:
        cmd += ["--ro-bind", path, path]
    cmd += ["--size", str(work_bytes), "--tmpfs", SANDBOX_WORKDIR]
    for fd, name in files:
        cmd += ["--perms", "0666", "--file", str(fd), f"{SANDBOX_WORKDIR}/{name}"]
    for fd, path in data:
        cmd += ["--perms", "0444", "--ro-bind-data", str(fd), path]
    # the root folder bubblewrap builds (a tmpfs: /etc, /home, the mount points) and /dev are owned by the
    # sandbox's user in a user namespace: read-only, so the only writable places are the three tmpfs above
    cmd += ["--remount-ro", "/dev", "--remount-ro", "/", "--chdir", SANDBOX_WORKDIR]
    if uid is not None:
        cmd += ["--chmod", "1777", "/tmp", "--chmod", "0777", SANDBOX_HOME, "--chmod", "0777", SANDBOX_WORKDIR]
    return cmd + ["--"] + list(argv)
