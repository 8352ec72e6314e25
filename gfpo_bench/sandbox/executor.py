"""Run untrusted Python (model-generated programs plus their tests) in a throw-away child process.

`execute(code, timeout_s)` runs one program and always returns an `ExecResult` within about
`timeout_s` + 1 s; `execute_many` runs a batch through a small thread pool. The evaluation recipe
follows human-eval (Chen et al. 2021, "Evaluating Large Language Models Trained on Code"): a fresh
process per program, a wall-clock limit, rlimits, and a `reliability_guard` against destructive
calls. It departs from human-eval in how a pass is decided and in the isolation layers:

* `passed` means the program ran to its last line. A runner in the child writes a per-run random
  nonce to a dedicated pipe only after the program returns; `sys.exit(0)`, `os._exit(0)` or a
  self-kill before the tests therefore score as `error`/`killed`, never `passed` (`_child.py`).
* Each run gets its own process group (`start_new_session`), which is SIGKILLed at the end.
* When unprivileged user namespaces work (`unshare(1)` probe, cached), the child also gets new
  user, pid, net and mount namespaces: no network interface but a down loopback; a private /proc
  (other processes, e.g. the trainer and its environment, are invisible and unaddressable); all
  mounts read-only except a 64 MiB tmpfs scratch directory; and when the namespace's PID 1 dies,
  the kernel kills every process left in it, including daemons that called `setsid`.

What it protects against: infinite loops, fork and thread bombs, memory hogs, gigabytes of output
(bounded while reading), early exits faking a pass, writes and deletes outside the scratch
directory, secrets in the environment (a fixed whitelist is passed), sockets, and signals to the
trainer. The trainer keeps running and no process started here outlives the call.

What it does not protect against (not a security boundary against a determined attacker): there is
no seccomp filter; the child runs as the same user, can read every file that user can read, and
shares the kernel, CPU, disk bandwidth and page cache with the trainer. The in-process guard
(`_guard.py`) can be undone by a program that digs through frames, `gc` or fresh module instances
(the tests do exactly that). Such a program can also forge a pass (the nonce is in the runner's
memory). Without namespaces (`isolation() == "process"`) it can then write outside the scratch
directory, use the network, read `/proc/<trainer>/environ`, signal same-user processes (the
trainer included), and leave `setsid` daemons behind the process-group kill. With or without
namespaces, RLIMIT_NPROC does not bind uid 0, so as root a guard-defeating fork bomb is bounded only
by the timeout (and the host's pid limits). Run the trainer as an unprivileged user where possible.

A sandbox process that dies before its program starts (killed by the OOM killer, a fork refused
with EAGAIN, a broken mount) is a fault of the machine, not of the program: it is replaced by a
fresh one, up to `RESTARTS` times, with a warning, and counted (`restarts()`). Only if every
replacement dies too does `execute` raise `SandboxStartError`, never scoring the program as wrong.
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Literal

from gfpo_bench.config_schema import require
from gfpo_bench.sandbox._pipes import OUTPUT_LIMIT as OUTPUT_LIMIT  # re-export: the output bound
from gfpo_bench.sandbox._pipes import close_quietly, communicate, kill_group

Status = Literal["passed", "failed", "timeout", "error", "killed"]
log = logging.getLogger(__name__)
RESTARTS = 2  # replacements of a sandbox that dies before its program starts
_restarts = [0]  # sandboxes replaced in this process
_restarts_lock = threading.Lock()


class SandboxStartError(RuntimeError):
    """The sandbox process died before the program started: the machine's fault, not the program's."""


def restarts() -> int:
    """How many dead sandboxes this process has replaced so far."""
    return _restarts[0]


CHILD = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_child.py")
NO_NAMESPACES_ENV = "GFPO_SANDBOX_NO_NAMESPACES"  # "1": skip namespaces even if available
_UNSHARE_ARGS = ("--user", "--map-root-user", "--net", "--pid", "--fork", "--kill-child", "--mount-proc")


@dataclass(frozen=True)
class ExecResult:
    status: Status  # passed: ran to its last line; failed: uncaught AssertionError; error: other
    # exception, syntax error or exit before the last line; timeout: wall clock; killed: a signal
    stdout: str  # first OUTPUT_LIMIT bytes, then a "[... N more bytes]" marker
    stderr: str
    duration_s: float  # wall clock from spawn to exit (or to the kill on timeout)
    detail: str = ""  # e.g. "AssertionError: ...", "killed by SIGKILL", "exited (code 0) early"
    returncode: int | None = None  # of the spawned process; negative: killed by that signal
    isolation: str = ""  # "namespaces,fs-readonly" | "namespaces,fs-partial" | "process"

    @property
    def passed(self) -> bool:
        return self.status == "passed"


_probe_lock = threading.Lock()
_unshare: list[str | None] = []  # memo of the probe: [path] or [None]


def isolation() -> Literal["namespaces", "process"]:
    """Which isolation `execute` uses here; the namespace probe runs once per process."""
    if os.environ.get(NO_NAMESPACES_ENV) == "1":
        return "process"
    return "namespaces" if _unshare_path() else "process"


def _unshare_path() -> str | None:
    with _probe_lock:
        if not _unshare:
            path, ok = shutil.which("unshare"), False
            if path and sys.platform.startswith("linux"):
                try:
                    cmd = [path, *_UNSHARE_ARGS, sys.executable, "-I", "-c", "pass"]
                    ok = subprocess.run(cmd, capture_output=True, timeout=10).returncode == 0
                except (OSError, subprocess.SubprocessError):
                    ok = False
            _unshare.append(path if ok else None)
        return _unshare[0]


def _child_env(workdir: str) -> dict[str, str]:
    """A fixed whitelist: nothing of the trainer's environment (API keys, WANDB_*, HF_*) leaks."""
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": workdir,
        "TMPDIR": workdir,
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "OMP_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
    }


def execute(code: str, timeout_s: float, memory_mb: int = 512) -> ExecResult:
    """Run `code` as a Python program in a sandboxed child process and report how it ended.

    >>> execute("assert 1 + 1 == 2", timeout_s=5).status
    'passed'
    >>> execute("import sys; sys.exit(0); assert False", timeout_s=5).status
    'error'
    """
    require("task.timeout_s", timeout_s)  # the task's limits; their ranges: config_schema.py
    require("task.memory_mb", memory_mb)
    for attempt in range(RESTARTS + 1):
        try:
            return _execute_once(code, timeout_s, memory_mb)
        except (SandboxStartError, BlockingIOError, InterruptedError) as e:  # EAGAIN on fork, ...
            if attempt == RESTARTS:
                raise
            with _restarts_lock:
                _restarts[0] += 1
            log.warning("sandbox died before its program started (%s): replaced by a fresh one", e)
            time.sleep(0.05 * (attempt + 1))
    raise AssertionError("unreachable")


def _execute_once(code: str, timeout_s: float, memory_mb: int) -> ExecResult:
    mode = isolation()
    workdir = tempfile.mkdtemp(prefix="gfpo-sandbox-")
    nonce = secrets.token_hex(16).encode()
    prefix = [_unshare_path() or "unshare", *_UNSHARE_ARGS] if mode == "namespaces" else []
    child_mode = "init" if mode == "namespaces" else "direct"
    status_r, status_w = os.pipe()
    cmd = [*prefix, sys.executable, "-I", "-B", CHILD, child_mode, str(status_w), repr(timeout_s)]
    cmd += [str(memory_mb), program_tag(code)]
    start = time.monotonic()
    try:
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=workdir,
            env=_child_env(workdir),
            pass_fds=(status_w,),
            start_new_session=True,  # own process group, killed as a whole below
        )
    except BaseException:
        os.close(status_r)
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    finally:
        os.close(status_w)
    try:
        payload = nonce + b"\n" + code.encode("utf-8", "replace")
        out, timed_out, end = communicate(proc, status_r, payload, start + timeout_s)
    finally:
        kill_group(proc)
        for f in (proc.stdin, proc.stdout, proc.stderr):
            close_quietly(f)
        os.close(status_r)
        _remove_tree(workdir)
    if not timed_out and b"ready" not in out["status"].split(b"\n"):
        # The child died before the program started: a broken sandbox, not a wrong program.
        raise SandboxStartError(
            f"sandbox failed to start (code {proc.returncode}): {_text(out['stderr'], out['stderr_dropped'])}"
        )
    status, detail, fs = _verdict(out["status"], nonce, timed_out, proc.returncode, timeout_s)
    return ExecResult(
        status=status,
        stdout=_text(out["stdout"], out["stdout_dropped"]),
        stderr=_text(out["stderr"], out["stderr_dropped"]),
        duration_s=end - start,
        detail=detail,
        returncode=proc.returncode,
        isolation=f"namespaces,{fs}" if mode == "namespaces" else "process",
    )


def program_tag(code: str) -> str:
    """Digest of a program, shown in its sandbox processes' argv so `ps` can tell runs apart."""
    return hashlib.sha256(code.encode("utf-8", "replace")).hexdigest()[:16]


def execute_many(
    codes: list[str], timeout_s: float, memory_mb: int = 512, max_workers: int = 2
) -> list[ExecResult]:
    """`execute` each program, at most `max_workers` at a time; results in input order."""
    if not codes:
        return []
    with ThreadPoolExecutor(max_workers=max(1, min(max_workers, len(codes)))) as pool:
        return list(pool.map(lambda c: execute(c, timeout_s, memory_mb), codes))


def _verdict(
    status: bytes, nonce: bytes, timed_out: bool, returncode: int | None, timeout_s: float
) -> tuple[Status, str, str]:
    lines = status.split(b"\n")
    fs = next((ln[5:].decode(errors="replace") for ln in lines if ln.startswith(b"note ")), "fs-shared")
    for line in lines:
        if line.startswith(nonce + b" "):
            verdict, _, detail = line[len(nonce) + 1 :].partition(b" ")
            if verdict in (b"passed", b"failed", b"error"):
                return verdict.decode(), detail.decode("utf-8", "replace"), fs  # type: ignore[return-value]
    if timed_out:
        return "timeout", f"exceeded {timeout_s:g} s wall clock", fs
    sig = next((int(ln[7:]) for ln in lines if ln.startswith(b"signal ") and ln[7:].isdigit()), None)
    if sig is None and returncode is not None and returncode < 0:
        sig = -returncode
    if sig is not None:
        return "killed", f"killed by {_signal_name(sig)}", fs
    return "error", f"exited (code {returncode}) before its last line", fs


def _signal_name(sig: int) -> str:
    try:
        return signal.Signals(sig).name
    except ValueError:
        return f"signal {sig}"


def _text(data: bytearray, dropped: int) -> str:
    text = data.decode("utf-8", "replace")
    return text + f"\n[... {dropped} more bytes]" if dropped else text


def _remove_tree(path: str) -> None:
    # The program may have chmod-ed a directory to 0 (only matters when not running as root).
    def make_writable(func: Callable[[str], object], p: str, _exc: object) -> None:
        try:
            os.chmod(os.path.dirname(p), 0o700)
            os.chmod(p, 0o700)
            func(p)
        except OSError:
            pass

    if sys.version_info >= (3, 12):
        shutil.rmtree(path, onexc=make_writable)
    else:
        shutil.rmtree(path, onerror=make_writable)
    shutil.rmtree(path, ignore_errors=True)
