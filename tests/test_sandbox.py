"""Hostile programs against `gfpo_bench.sandbox.execute`.

Every run checks the three promises a trainer relies on: a result within timeout + MARGIN_S, the
caller still alive, and no process of the run left behind (found by the program's tag in
/proc/*/cmdline). Most tests run in both isolation modes: "namespaces" (when `unshare` works here)
and "process" (namespaces switched off). Tests marked ns-only defeat the in-process guard on
purpose, to show that the namespace layer alone still holds.
"""

from __future__ import annotations

import os
import socket
import tempfile
import textwrap
import threading
import time
import uuid

import pytest

from gfpo_bench.sandbox import ExecResult, execute, execute_many, executor, isolation
from gfpo_bench.sandbox.executor import NO_NAMESPACES_ENV, OUTPUT_LIMIT, program_tag

MARGIN_S = 2.0

# Undoes the guard without ctypes: a fresh instance of the `posix` builtin module has the real
# fork/kill/setsid. Only used in ns-only tests (in process mode it could really kill the test).
FRESH_POSIX = """
import importlib.machinery, importlib.util
posix = importlib.util.module_from_spec(
    importlib.machinery.ModuleSpec("posix", importlib.machinery.BuiltinImporter))
"""


@pytest.fixture(params=["namespaces", "process"])
def mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "namespaces":
        monkeypatch.delenv(NO_NAMESPACES_ENV, raising=False)
        if isolation() != "namespaces":
            pytest.skip("unprivileged user namespaces are not available here")
    else:
        monkeypatch.setenv(NO_NAMESPACES_ENV, "1")
    return request.param


@pytest.fixture
def ns_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(NO_NAMESPACES_ENV, raising=False)
    if isolation() != "namespaces":
        pytest.skip("unprivileged user namespaces are not available here")


def sandbox_processes(code: str) -> list[int]:
    """Live (non-zombie) processes whose command line carries this program's tag."""
    tag = program_tag(code).encode()
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmdline = f.read()
            with open(f"/proc/{pid}/stat", "rb") as f:
                state = f.read().rsplit(b")", 1)[1].split()[0]
        except OSError:
            continue
        if tag in cmdline and state != b"Z":
            found.append(int(pid))
    return found


def run(code: str, timeout_s: float = 3.0, memory_mb: int = 256) -> ExecResult:
    """execute + the promises every run must keep."""
    code = textwrap.dedent(code) + f"\n# {uuid.uuid4()}\n"  # unique tag per run
    start = time.monotonic()
    result = execute(code, timeout_s=timeout_s, memory_mb=memory_mb)
    assert time.monotonic() - start < timeout_s + MARGIN_S
    assert sandbox_processes(code) == []
    return result


def test_passing_program_passes_and_captures_output(mode: str) -> None:
    r = run("print('hello'); assert sum(range(4)) == 6")
    assert (r.status, r.passed, r.stdout) == ("passed", True, "hello\n")
    assert r.isolation.startswith(mode)


def test_assertion_error_is_failed(mode: str) -> None:
    r = run("assert 1 + 1 == 3, 'math is broken'")
    assert (r.status, r.passed) == ("failed", False)
    assert "AssertionError: math is broken" in r.detail and "math is broken" in r.stderr


@pytest.mark.parametrize("code", ["def f(:\n  pass", "raise ValueError('x')", "1/0"])
def test_syntax_error_and_other_exceptions_are_errors(mode: str, code: str) -> None:
    assert run(code).status == "error"


@pytest.mark.parametrize(
    "exit_line, status",
    [
        ("import sys; sys.exit(0)", "error"),
        ("exit()", "error"),
        ("raise SystemExit", "error"),
        ("import os; os._exit(0)", "error"),
        ("import os; os.kill(os.getpid(), 9)", "error"),  # os.kill is disabled
        ("import signal; signal.raise_signal(signal.SIGKILL)", "killed"),
        ("import signal; signal.raise_signal(signal.SIGTERM)", "killed"),
    ],
)
def test_exiting_before_the_tests_is_not_a_pass(mode: str, exit_line: str, status: str) -> None:
    r = run(f"def solution(): return 1\n{exit_line}\nassert solution() == 2\n")
    assert not r.passed and r.status == status


def test_forged_verdict_without_the_nonce_is_not_a_pass(mode: str) -> None:
    # Write pass-looking lines to every fd the program might guess, then leave quietly.
    r = run(
        """
        import os, sys
        assert sys.stdin.read() == ''  # the nonce was consumed before the program started
        for fd in range(3, 64):
            try:
                os.write(fd, b'passed\\n' + b'0' * 32 + b' passed \\n')
            except OSError:
                pass
        os._exit(0)
        """
    )
    assert r.status == "error"


def test_infinite_loop_times_out(mode: str) -> None:
    r = run("while True:\n    pass", timeout_s=1.0)
    assert r.status == "timeout" and r.duration_s >= 1.0


def test_sleeping_forever_times_out(mode: str) -> None:
    r = run("import time; print('started', flush=True); time.sleep(1000)", timeout_s=1.0)
    assert r.status == "timeout" and r.stdout == "started\n"


def test_fork_bomb_is_contained(mode: str) -> None:
    r = run("import os\nwhile True:\n    os.fork()")
    assert r.status == "error" and "fork" in r.detail


@pytest.mark.parametrize(
    "spawn",
    [
        "import subprocess; subprocess.run(['sleep', '100'])",
        "import os; os.system('sleep 100 &')",
        "import multiprocessing as mp; mp.Process(target=print).start()",
        "import os; os.posix_spawn('/bin/sleep', ['sleep', '100'], {})",
        "import os; os.execv('/bin/sleep', ['sleep', '100'])",
    ],
)
def test_spawning_processes_is_refused(mode: str, spawn: str) -> None:
    assert run(spawn).status == "error"


def test_thread_bomb_is_contained(mode: str) -> None:
    r = run(
        """
        import threading, time
        while True:
            threading.Thread(target=time.sleep, args=(100,), daemon=True).start()
        """
    )
    assert r.status in ("error", "killed")


def test_memory_hog_is_stopped_not_hung(mode: str) -> None:
    r = run("chunks = []\nwhile True:\n    chunks.append(bytearray(10**7))", timeout_s=10.0)
    assert r.status in ("error", "killed")
    assert r.status == "killed" or "MemoryError" in r.detail


@pytest.mark.parametrize("stream", ["stdout", "stderr"])
def test_a_gigabyte_of_output_is_truncated(mode: str, stream: str) -> None:
    r = run(f"import sys\nblock = 'x' * (1 << 20)\nfor _ in range(1024):\n    sys.{stream}.write(block)")
    text = getattr(r, stream)
    assert r.status in ("passed", "timeout")  # drained, so normally passed
    assert text.startswith("x" * OUTPUT_LIMIT) and len(text) < OUTPUT_LIMIT + 100
    assert "more bytes]" in text


def test_endless_output_still_times_out(mode: str) -> None:
    r = run("while True:\n    print('x' * 10_000)", timeout_s=1.0)
    assert r.status == "timeout" and len(r.stdout) < OUTPUT_LIMIT + 100


def test_files_outside_the_scratch_directory_are_untouched(mode: str, tmp_path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    mode_bits = victim.stat().st_mode
    (tmp_path / "sub").mkdir()
    r = run(
        f"""
        import os, shutil, pathlib
        attacks = [
            lambda: open({str(victim)!r}, 'w').write('gone'),
            lambda: open({str(victim)!r}, 'a').write('more'),
            lambda: os.remove({str(victim)!r}),
            lambda: os.rename({str(victim)!r}, 'stolen.txt'),
            lambda: os.truncate({str(victim)!r}, 0),
            lambda: os.close(os.open({str(victim)!r}, os.O_WRONLY | os.O_TRUNC)),
            lambda: os.chmod({str(victim)!r}, 0),
            lambda: shutil.rmtree({str(tmp_path / "sub")!r}),
            lambda: pathlib.Path({str(tmp_path / "new.txt")!r}).write_text('x'),
            lambda: os.symlink('/etc/passwd', {str(tmp_path / "link")!r}),
        ]
        for attack in attacks:
            try:
                attack()
            except OSError:
                pass
        open('inside.txt', 'w').write('fine')  # the scratch directory itself is writable
        os.remove('inside.txt')
        """
    )
    assert r.status == "passed", r.stderr
    assert victim.read_text() == "precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sub", "victim.txt"]
    assert victim.stat().st_mode == mode_bits


def test_links_inside_may_be_removed_but_not_written_through(mode: str, tmp_path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    r = run(
        f"""
        import os
        os.symlink({str(victim)!r}, 'link')
        assert open('link').read() == 'precious'  # reading is allowed
        for attack in (lambda: open('link', 'w'), lambda: os.chmod('link', 0),
                       lambda: os.link('link', 'hard')):
            try:
                attack()
            except OSError:
                continue
            raise SystemExit('wrote through a link')
        os.remove('link')  # removes the link, not its target
        """
    )
    assert r.passed, r.stderr
    assert victim.read_text() == "precious"


def test_read_only_mounts_hold_when_the_guard_is_undone(ns_only: None, tmp_path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    r = run(
        f"""
        real_open = next(c.cell_contents for c in open.__closure__
                         if getattr(c.cell_contents, '__name__', '') == 'open')
        real_open({str(victim)!r}, 'w').write('gone')
        """
    )
    assert r.status == "error" and "Read-only file system" in r.detail
    assert victim.read_text() == "precious"


def test_scratch_directory_is_removed(mode: str, tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    r = run("import os\nos.makedirs('a/b')\nopen('a/b/f', 'w').write('x')\nos.chmod('a', 0)")
    assert r.passed, r.stderr
    assert list(tmp_path.iterdir()) == []


def test_secrets_in_the_environment_are_not_visible(mode: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WANDB_API_KEY", "secret123")
    monkeypatch.setenv("HF_TOKEN", "secret123")
    r = run("import os\nprint(sorted(os.environ))\nassert 'secret123' not in str(os.environ)")
    assert r.passed, r.stderr
    assert "WANDB" not in r.stdout and "HF_" not in r.stdout


def test_trainer_environment_is_invisible_through_proc(
    ns_only: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WANDB_API_KEY", "secret123")
    r = run(
        """
        import os
        leaked = []
        for pid in os.listdir('/proc'):
            try:
                if b'secret123' in open(f'/proc/{pid}/environ', 'rb').read():
                    leaked.append(pid)
            except OSError:
                pass
        assert not leaked, leaked
        """
    )
    assert r.passed, r.stderr


@pytest.fixture
def listener():
    srv = socket.create_server(("127.0.0.1", 0))
    srv.settimeout(0.2)
    yield srv
    srv.close()


def _accepted(srv: socket.socket) -> bool:
    try:
        srv.accept()[0].close()
        return True
    except OSError:
        return False


def test_sockets_are_refused(mode: str, listener: socket.socket) -> None:
    port = listener.getsockname()[1]
    r = run(
        f"""
        import socket, urllib.request
        attempts = [
            lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM),
            lambda: socket.create_connection(('127.0.0.1', {port}), timeout=1),
            lambda: urllib.request.urlopen('http://127.0.0.1:{port}/', timeout=1),
            lambda: socket.getaddrinfo('example.com', 80),
        ]
        for attempt in attempts:
            try:
                attempt()
            except OSError:
                continue
            raise SystemExit('network reachable')
        """
    )
    assert r.passed, r.stderr
    assert not _accepted(listener)


def test_network_namespace_holds_when_the_guard_is_undone(ns_only: None, listener: socket.socket) -> None:
    port = listener.getsockname()[1]
    r = run(
        f"""
        import socket
        raw = socket._socket.socket(socket.AF_INET, socket.SOCK_STREAM)  # the unpatched C type
        raw.settimeout(1)
        raw.connect(('127.0.0.1', {port}))
        """
    )
    assert r.status == "error" and "unreachable" in r.detail
    assert not _accepted(listener)


def test_killing_the_parent_leaves_the_caller_alive(mode: str) -> None:
    r = run("import os\nos.kill(os.getppid(), 9)\nos.killpg(os.getpgid(0), 9)")
    assert r.status == "error"
    assert os.getpid() > 0  # still here; also checked by every later test running


def test_raw_kill_cannot_reach_the_caller(ns_only: None) -> None:
    r = run(
        FRESH_POSIX
        + """
import os
pids = sorted(int(p) for p in os.listdir('/proc') if p.isdigit())
assert pids == [1, posix.getpid()], pids  # the caller has no pid in the namespace
posix.kill(posix.getppid(), 9)  # the namespace's init: PID 1 ignores signals from inside
"""
    )
    assert r.passed, r.stderr


def test_setsid_daemon_dies_with_the_namespace(ns_only: None) -> None:
    # Double fork + setsid: the grandchild leaves the process group the caller kills.
    r = run(
        FRESH_POSIX
        + """
import time
if posix.fork() == 0:
    posix.setsid()
    if posix.fork() == 0:
        time.sleep(100)
    posix._exit(0)
time.sleep(0.5)
"""
    )
    assert r.passed, r.stderr  # and run() found no process left


def test_program_runs_as_main(mode: str) -> None:
    r = run(
        """
        import pickle
        class Point:
            x = 3
        if __name__ == '__main__':
            assert pickle.loads(pickle.dumps(Point())).x == 3
            print('main')
        """
    )
    assert r.passed and r.stdout == "main\n", r.stderr


def test_large_program_is_delivered_whole(mode: str) -> None:
    body = "\n".join(f"v{i} = {i}" for i in range(30_000))  # ~300 KB, larger than a pipe buffer
    r = run(body + "\nassert v29999 == 29999\nprint('ok')")
    assert r.passed and r.stdout == "ok\n"


def test_execute_many_keeps_order_and_runs_concurrently(mode: str) -> None:
    codes = [f"import time\ntime.sleep(1)\nprint({i})\nassert {i} != 2" for i in range(4)]
    start = time.monotonic()
    results = execute_many(codes, timeout_s=5.0, memory_mb=256, max_workers=2)
    elapsed = time.monotonic() - start
    assert [r.stdout for r in results] == ["0\n", "1\n", "2\n", "3\n"]
    assert [r.status for r in results] == ["passed", "passed", "failed", "passed"]
    assert elapsed < 3.5  # 4 x 1 s with 2 workers ~ 2 s; serial would be >= 4 s


def test_execute_many_from_several_threads_at_once(mode: str) -> None:
    out: dict[int, list[ExecResult]] = {}

    def batch(j: int) -> None:
        out[j] = execute_many([f"print({j * 10 + i})" for i in range(3)], timeout_s=5.0, memory_mb=256)

    threads = [threading.Thread(target=batch, args=(j,)) for j in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert {j: [r.stdout for r in rs] for j, rs in out.items()} == {
        j: [f"{j * 10 + i}\n" for i in range(3)] for j in range(3)
    }


def test_invalid_arguments_raise() -> None:
    with pytest.raises(ValueError):
        execute("pass", timeout_s=0)
    assert execute_many([], timeout_s=1.0) == []


def test_a_sandbox_that_cannot_start_raises_instead_of_scoring(
    mode: str, monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    # A broken setup (here: the child script is missing) must not be scored as a wrong answer.
    monkeypatch.setattr(executor, "CHILD", str(tmp_path / "missing.py"))
    with pytest.raises(RuntimeError, match="sandbox failed to start"):
        execute("pass", timeout_s=5.0)


DYING_CHILD = """
import os, runpy, signal, sys
count = {count!r}
with open(count, "a+") as f:
    f.seek(0)
    n = len(f.read())
    f.write("x")
if n < {deaths}:
    # the sandbox dies before its program starts (SIGKILL in process mode; as PID 1 of its own pid
    # namespace, a process ignores signals it sends itself, so there it exits the same way)
    os.kill(os.getpid(), signal.SIGKILL)
    os._exit(137)
sys.argv[0] = {real!r}
runpy.run_path({real!r}, run_name="__main__")
"""


def test_a_sandbox_that_dies_is_replaced(
    mode: str, monkeypatch: pytest.MonkeyPatch, tmp_path, caplog
) -> None:
    # Inject the fault: the first two sandbox processes SIGKILL themselves before running anything.
    count = tmp_path / "starts"
    child = tmp_path / "dying_child.py"
    child.write_text(DYING_CHILD.format(count=str(count), deaths=2, real=executor.CHILD))
    monkeypatch.setattr(executor, "CHILD", str(child))
    before = executor.restarts()
    with caplog.at_level("WARNING"):
        results = execute_many(["assert 1 + 1 == 2", "assert 1 + 1 == 3"], timeout_s=5.0, max_workers=1)
    assert [r.status for r in results] == ["passed", "failed"]  # scored as if nothing had happened
    assert executor.restarts() - before == 2 and "replaced by a fresh one" in caplog.text
    assert len(count.read_text()) == 4  # 2 dead sandboxes + 2 that ran the programs


def test_a_sandbox_that_keeps_dying_raises_after_its_replacements(
    mode: str, monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    count = tmp_path / "starts"
    child = tmp_path / "dying_child.py"
    child.write_text(DYING_CHILD.format(count=str(count), deaths=99, real=executor.CHILD))
    monkeypatch.setattr(executor, "CHILD", str(child))
    with pytest.raises(executor.SandboxStartError, match="sandbox failed to start"):
        execute("pass", timeout_s=5.0)
    assert len(count.read_text()) == 1 + executor.RESTARTS
