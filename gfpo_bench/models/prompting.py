"""Turn a task prompt into the text a model sees.

The tiny model reads the bare question and a newline. Chat models (Qwen2.5-Instruct and the like)
get the question inside their chat template with a system message that states the output format.
A template that rejects the system role (Gemma's, older Mistral's) gets the instructions at the
top of the user turn instead, as those models' own cards recommend.
"""

from __future__ import annotations

from dataclasses import dataclass

from jinja2.exceptions import TemplateError

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
