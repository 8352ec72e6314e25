"""Turn a task prompt into the text a model sees, and into its token ids (`encode_prompt`, the one
place a prompt is encoded: sampling, evaluation and SFT see the same ids).

The tiny model reads the bare question and a newline. Chat models (Qwen2.5-Instruct and the like)
get the question inside their chat template with a system message that states the output format.
A template that rejects the system role (Gemma's, older Mistral's) gets the instructions at the
top of the user turn instead, as those models' own cards recommend.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from jinja2.exceptions import TemplateError

if TYPE_CHECKING:
    from gfpo_bench.tasks.base import Task
    from gfpo_bench.types import Problem

SYSTEM_PROMPT = (
    "Reason step by step. Write one step per line inside <think> </think>, "
    "then give only the final answer inside <answer> </answer>."
)


@dataclass(frozen=True)
class PromptFormatter:
    chat_template: bool = False  # apply the tokenizer's chat template (instruct models)
    system: str = SYSTEM_PROMPT

    def __call__(self, tokenizer, question: str) -> str:
        if not self.chat_template:
            return question + "\n"
        messages = [{"role": "system", "content": self.system}, {"role": "user", "content": question}]
        try:
            return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        except TemplateError:  # no system role in this template
            merged = [{"role": "user", "content": f"{self.system}\n\n{question}"}]
            return tokenizer.apply_chat_template(merged, tokenize=False, add_generation_prompt=True)


def encode_prompt(tokenizer, formatter: PromptFormatter, task: Task, problem: Problem) -> list[int]:
    """The ids of `problem`'s prompt as the model reads it: the task's prompt text, formatted, with no
    special tokens added (the chat template, if any, already holds them)."""
    return tokenizer(formatter(tokenizer, task.prompt(problem)), add_special_tokens=False)["input_ids"]


def encode_completion(tokenizer, text: str) -> list[int]:
    """The ids of a completion as the model writes it: the text, then eos."""
    return tokenizer(text, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
