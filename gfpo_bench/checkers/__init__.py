"""Checkers: pure functions that judge a piece of reasoning, with no dependency on the rest of
gfpo_bench (a leaf of the import graph; `tests/test_layers.py` keeps it so).

- `answers.py`: does a final math answer equal the reference (`answers_match`, math-verify), and
  a best-effort `extract_final_answer` for free-form outputs.
- `equations.py`: the step verifier for arithmetic, +1/0/-1 per reasoning step (`check_equation_step`).
- `steps.py`: where a path first goes wrong by those step scores (`first_wrong_step`).

Tasks score with them, samplers branch at the first wrong step, analytics and the pair table report it.
"""
