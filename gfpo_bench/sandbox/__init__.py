"""Sandboxed execution of generated programs: `execute`, `execute_many`, `ExecResult`.

See `executor.py` for what the sandbox protects against and what it does not.
"""

from gfpo_bench.sandbox.executor import (
    ExecResult,
    SandboxStartError,
    execute,
    execute_many,
    isolation,
    restarts,
)

__all__ = ["ExecResult", "SandboxStartError", "execute", "execute_many", "isolation", "restarts"]
