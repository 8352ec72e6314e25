"""Parent side of one sandbox run: feed stdin, read bounded output, notice the exit, kill the group.

Split from `executor.py`. Two details matter for safety: output beyond the limit is read and
dropped (never buffered), and the child is not reaped until its process group has been SIGKILLed,
so the group id cannot be recycled by another process (e.g. a concurrent sandbox) in between.
"""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import time
from typing import IO

OUTPUT_LIMIT = 4096  # bytes of stdout / stderr kept; the rest is read and dropped
STATUS_LIMIT = 1 << 16  # bytes of the verdict pipe kept (the program can write to it too)
KILL_WAIT_S = 1.0  # how long to wait for a SIGKILLed process group to be reaped


def communicate(
    proc: subprocess.Popen, status_r: int, payload: bytes, deadline: float
) -> tuple[dict, bool, float]:
    """Feed stdin, read stdout/stderr/status with bounds, until the child exits or the deadline."""
    limits = {"stdout": OUTPUT_LIMIT, "stderr": OUTPUT_LIMIT, "status": STATUS_LIMIT}
    out: dict = {k: bytearray() for k in limits} | {f"{k}_dropped": 0 for k in limits}
    files = {"stdout": proc.stdout.fileno(), "stderr": proc.stderr.fileno(), "status": status_r}
    sel = selectors.DefaultSelector()
    for name, fd in files.items():
        os.set_blocking(fd, False)
        sel.register(fd, selectors.EVENT_READ, name)
    os.set_blocking(proc.stdin.fileno(), False)
    sel.register(proc.stdin, selectors.EVENT_WRITE, "stdin")
    pidfd = _pidfd(proc.pid)
    if pidfd is not None:
        sel.register(pidfd, selectors.EVENT_READ, "exit")
    sent, timed_out = 0, False
    try:
        while not _exited(proc.pid):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                timed_out = True
                break
            # Without a pidfd, poll for the exit every 20 ms.
            for key, _ in sel.select(remaining if pidfd is not None else min(remaining, 0.02)):
                if key.data == "stdin":
                    sent = _feed(sel, proc.stdin, payload, sent)
                elif key.data != "exit" and not _drain(key.fd, key.data, out, limits):
                    sel.unregister(key.fd)
        end = time.monotonic()
        for name, fd in files.items():  # what was written before the exit is still in the pipes
            _drain(fd, name, out, limits)
    finally:
        sel.close()
        if pidfd is not None:
            os.close(pidfd)
    return out, timed_out, end


def _feed(sel: selectors.BaseSelector, stdin: IO[bytes], payload: bytes, sent: int) -> int:
    try:
        sent += os.write(stdin.fileno(), payload[sent : sent + (1 << 16)])
    except BlockingIOError:
        return sent
    except OSError:  # the child closed stdin or died: stop feeding
        sent = len(payload)
    if sent >= len(payload):  # EOF tells the child the program is complete
        sel.unregister(stdin)
        close_quietly(stdin)
    return sent


def _drain(fd: int, name: str, out: dict, limits: dict) -> bool:
    """Read what is available (at most 1 MiB, so a writer that never pauses cannot keep us past
    the deadline); keep up to the limit, count the rest. False at end of file."""
    for _ in range(16):
        try:
            chunk = os.read(fd, 1 << 16)
        except BlockingIOError:
            return True
        except OSError:
            return False
        if not chunk:
            return False
        room = max(limits[name] - len(out[name]), 0)
        out[name] += chunk[:room]
        out[f"{name}_dropped"] += max(len(chunk) - room, 0)
    return True


def _pidfd(pid: int) -> int | None:
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None


def _exited(pid: int) -> bool:
    """Has the child exited? Does not reap it, so its pid (= process group id) stays reserved
    and the group kill cannot hit a recycled id."""
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True


def kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.wait(timeout=KILL_WAIT_S)
    except subprocess.TimeoutExpired:  # stuck in the kernel; give up rather than hang the caller
        pass


def close_quietly(f: IO[bytes] | None) -> None:
    try:
        if f is not None:
            f.close()
    except OSError:
        pass
