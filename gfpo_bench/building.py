"""Objects from config: `hydra.utils.instantiate`, with a constructor's own error left as it is.

Every box of a run (task, sampler, reward, loss, strategies, schedule, module, datamodule, callbacks,
trainer) is a config node with a `_target_` (and `_partial_` when it needs the model or the task
first). Hydra wraps whatever a constructor raises in an `InstantiationException`; `build` re-raises
the constructor's own exception instead, so a `ValueError` or `ConfigError` about a bad argument
reaches the CLI as the one line it is (cli.py), not as Hydra's wrapper around it.
"""

from __future__ import annotations

from typing import Any

from hydra.errors import InstantiationException
from hydra.utils import instantiate


def build(node: Any, **kwargs: Any) -> Any:
    """`instantiate(node, **kwargs)`; the constructor's exception, unwrapped, if it raises."""
    try:
        return instantiate(node, **kwargs)
    except InstantiationException as e:
        if isinstance(e.__cause__, Exception):
            raise e.__cause__ from None
        raise
