"""gfpo-bench: compare ways of building preference pairs from sampled reasoning paths.

One loop (docs/design.md): prompts -> Sampler -> Rollouts -> Reward -> Pairing -> PairwiseLoss -> step.
"""

__version__ = "0.1.0"
