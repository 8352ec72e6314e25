"""Policies: anything with `complete(problems) -> list[str]`, returning one completion per problem.

`reference.py` holds the model-free reference policies that prove the evaluation harness.
"""

from gfpo_bench.policies.reference import CorruptedReferencePolicy, ReferencePolicy

__all__ = ["CorruptedReferencePolicy", "ReferencePolicy"]
