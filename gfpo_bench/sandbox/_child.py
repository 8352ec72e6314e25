"""Entry point of the sandbox child process. Run as a script by `executor.py`; never imported.

    python -I -B _child.py MODE STATUS_FD TIMEOUT_S MEMORY_MB TAG     (stdin: nonce line + program)

MODE "direct": this process is the runner. Set rlimits, install the guard (`_guard.py`), exec the
    program, then report on STATUS_FD.
MODE "init": this process is PID 1 of fresh user/pid/net/mount namespaces made by `unshare(1)`. It
    mounts a size-limited tmpfs over the scratch directory, remounts every other mount read-only,
    moves into a nested user namespace (so nothing below it holds privilege over those mounts),
    forks the runner and reaps it. The runner is not PID 1, so signals behave normally for it; when
    PID 1 exits the kernel kills everything left in the pid namespace, daemons included.

The verdict protocol on STATUS_FD (one line each):
    b"<nonce> passed|failed|error <detail>"   written by the runner after the program's last line
    b"signal <n>"                              written by init when the runner died by a signal
    b"note <text>"                             isolation actually achieved (diagnostic)
    b"ready"                                   the runner is about to start the program; without
                                               it the parent reports a broken sandbox, not a verdict
The nonce is read from stdin before the program exists and stdin is then replaced by /dev/null, so
the program cannot read it from a file, fd, argv or the environment. It does sit in this
interpreter's memory (a frame local), so a program that walks the caller's frames can forge a
pass; `passed` therefore means "ran to its last line" against accident and easy tricks (sys.exit,
os._exit, a self-kill before the tests), not against a determined adversary.

`TAG` is a digest of the program, only so that `ps` / tests can tell sandboxes apart.
"""

from __future__ import annotations

import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, _HERE)
import _guard  # noqa: E402  (the script's directory is not on sys.path under `python -I`)

sys.path.remove(_HERE)

FILENAME = "<program>"
SCRATCH_MB = 64  # size of the tmpfs scratch directory in namespace mode
FILE_LIMIT = 16 << 20  # RLIMIT_FSIZE: largest file the program may write, bytes
NPROC_LIMIT = 32  # RLIMIT_NPROC (counts threads; not enforced for uid 0 on the host)
NOFILE_LIMIT = 256

# mount(2) / unshare(2) constants (linux/fs.h, linux/sched.h)
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC = 32, 4096, 16384
CLONE_NEWUSER = 0x10000000
# Per-mount flags that an unprivileged remount must repeat (the kernel locks them).
_KEEP_FLAGS = {
    b"nosuid": MS_NOSUID,
    b"nodev": MS_NODEV,
    b"noexec": MS_NOEXEC,
    b"noatime": 1024,
    b"nodiratime": 2048,
    b"relatime": 1 << 21,
}


def main() -> None:
    mode, status_fd = sys.argv[1], int(sys.argv[2])
    timeout_s, memory_mb = float(sys.argv[3]), int(sys.argv[4])
    chunks = []
    while chunk := os.read(0, 1 << 16):
        chunks.append(chunk)
    nonce, _, source = b"".join(chunks).partition(b"\n")
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    if mode == "init":
        _init(status_fd)  # returns only in the forked runner
    _run(source.decode("utf-8", "replace"), nonce, status_fd, timeout_s, memory_mb)


def _init(status_fd: int) -> None:
    os.write(status_fd, b"note " + _isolate_filesystem(os.getcwd()) + b"\n")
    runner = os.fork()
    if runner == 0:
        return
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    status = 0
    while True:  # as PID 1 we also reap any orphan the runner leaves
        try:
            pid, st = os.wait()
        except ChildProcessError:
            break
        if pid == runner:
            status = st
            break
    if os.WIFSIGNALED(status):
        os.write(status_fd, b"signal %d\n" % os.WTERMSIG(status))
        os._exit(128 + os.WTERMSIG(status))
    os._exit(os.waitstatus_to_exitcode(status))


def _isolate_filesystem(root: str) -> bytes:
    """Scratch tmpfs at `root`, everything else read-only, then give up privilege over mounts."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.mount.argtypes = (ctypes.c_char_p,) * 3 + (ctypes.c_ulong, ctypes.c_char_p)
        libc.unshare.argtypes = (ctypes.c_int,)
    except (ImportError, OSError, AttributeError):
        return b"fs-shared"
    rootb = os.fsencode(root)
    opts = b"size=%dm,mode=0700" % SCRATCH_MB
    if libc.mount(b"tmpfs", rootb, b"tmpfs", MS_NOSUID | MS_NODEV, opts) != 0:
        if libc.mount(rootb, rootb, None, MS_BIND | MS_REC, None) != 0:
            return b"fs-shared"
    os.chdir(root)  # step onto the new mount; the old cwd is the directory underneath it
    failed = 0
    with open("/proc/self/mountinfo", "rb") as f:
        mounts = f.read().splitlines()
    for line in mounts:
        fields = line.split(b" ")
        point = _unescape(fields[4])
        if point == rootb:
            continue
        flags = MS_REMOUNT | MS_BIND | MS_RDONLY
        for opt in fields[5].split(b","):
            flags |= _KEEP_FLAGS.get(opt, 0)
        failed += libc.mount(None, point, None, flags, None) != 0
    dropped = libc.unshare(CLONE_NEWUSER) == 0
    return b"fs-readonly" if not failed and dropped else b"fs-partial"


def _unescape(field: bytes) -> bytes:
    """mountinfo writes space, tab, newline and backslash as 3-digit octal escapes."""
    import re

    return re.sub(rb"\\([0-7]{3})", lambda m: bytes([int(m.group(1), 8)]), field)


def _set_limits(timeout_s: float, memory_mb: int) -> None:
    import math
    import resource as r

    cpu = math.ceil(timeout_s) + 1
    wanted = (
        (r.RLIMIT_CPU, cpu, cpu + 1),  # SIGXCPU at the soft limit, SIGKILL one second later
        (r.RLIMIT_AS, memory_mb << 20, memory_mb << 20),
        (r.RLIMIT_NPROC, NPROC_LIMIT, NPROC_LIMIT),
        (r.RLIMIT_FSIZE, FILE_LIMIT, FILE_LIMIT),
        (r.RLIMIT_NOFILE, NOFILE_LIMIT, NOFILE_LIMIT),
        (r.RLIMIT_CORE, 0, 0),
    )
    for res, soft, hard in wanted:
        cur_hard = r.getrlimit(res)[1]
        if cur_hard != r.RLIM_INFINITY:
            hard, soft = min(hard, cur_hard), min(soft, cur_hard)
        r.setrlimit(res, (soft, hard))


def _run(source: str, nonce: bytes, status_fd: int, timeout_s: float, memory_mb: int) -> None:
    import builtins
    import linecache
    import traceback
    import types

    # Bound before the program runs, so it cannot swap what reports its verdict.
    write, exit_, out, err = os.write, os._exit, sys.stdout, sys.stderr
    _set_limits(timeout_s, memory_mb)
    linecache.cache[FILENAME] = (len(source), None, source.splitlines(True), FILENAME)
    sys.argv = [FILENAME]
    _guard.install(os.getcwd())
    # The program is `__main__`, as under `python program.py` (unittest.main, pickle, doctest).
    program = types.ModuleType("__main__")
    program.__builtins__ = builtins  # type: ignore[attr-defined]
    sys.modules["__main__"] = program
    write(status_fd, b"ready\n")
    try:
        exec(compile(source, FILENAME, "exec"), program.__dict__)
    except BaseException as e:  # noqa: BLE001  (SystemExit included: an early exit is an error)
        verdict = b"failed" if isinstance(e, AssertionError) else b"error"
        detail = _describe(e)
        try:
            traceback.print_exception(type(e), e, e.__traceback__.tb_next, file=err)  # skip _run
        except BaseException:  # noqa: BLE001
            pass
    else:
        verdict, detail = b"passed", b""
    for stream in (out, err):
        try:
            stream.flush()
        except BaseException:  # noqa: BLE001  (the program may have closed it)
            pass
    try:
        write(status_fd, nonce + b" " + verdict + b" " + detail + b"\n")
    finally:
        exit_(0)


def _describe(e: BaseException) -> bytes:
    try:
        text = f"{type(e).__name__}: {e}"
    except BaseException:  # noqa: BLE001
        text = type(e).__name__
    return " ".join(text.split())[:200].encode("utf-8", "replace")


if __name__ == "__main__":
    main()
