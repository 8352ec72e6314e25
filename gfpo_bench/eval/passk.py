"""pass@k: the probability that at least one of k samples passes, estimated from n >= k samples.

Follows Chen et al. 2021, "Evaluating Large Language Models Trained on Code" (Codex / HumanEval),
eq. 1: pass@k = E_problems[1 - C(n-c, k) / C(n, k)], with n samples per problem of which c pass.
Like the paper's numpy reference, the ratio of binomials is computed as the product
prod_{i=n-c+1..n} (1 - k/i), which never forms the (huge) binomial coefficients. Departs from the reference in one place: k > n
raises instead of returning 1.0 (the estimator needs at least k samples).

>>> round(pass_at_k(n=5, c=2, k=1), 10)  # 1 - C(3,1)/C(5,1) = 1 - 3/5
0.4
>>> round(pass_at_k(n=5, c=2, k=2), 10)  # 1 - C(3,2)/C(5,2) = 1 - 3/10
0.7
>>> round(mean_pass_at_k([(5, 2), (5, 0)], k=1), 10)  # (0.4 + 0) / 2
0.2
"""

from __future__ import annotations


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k for one problem: n samples drawn, c of them correct."""
    if not 0 <= c <= n:
        raise ValueError(f"need 0 <= c <= n, got n={n}, c={c}")
    if not 1 <= k <= n:
        raise ValueError(f"need 1 <= k <= n, got k={k}, n={n}")
    if n - c < k:  # every size-k subset contains a correct sample
        return 1.0
    prob_all_wrong = 1.0  # C(n-c, k) / C(n, k)
    for i in range(n - c + 1, n + 1):
        prob_all_wrong *= 1.0 - k / i
    return 1.0 - prob_all_wrong


def mean_pass_at_k(results: list[tuple[int, int]], k: int) -> float:
    """Mean pass@k over problems, each given as (n samples, c correct)."""
    if not results:
        raise ValueError("mean_pass_at_k: no problems")
    return sum(pass_at_k(n, c, k) for n, c in results) / len(results)
