"""Turn a task prompt into the text a model sees.

The tiny model reads the bare question and a newline. Chat models (Qwen2.5-Instruct and the like)
get the question inside their chat template with a system message that states the output format.
"""

from __future__ import annotations

from dataclasses import dataclass

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
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
