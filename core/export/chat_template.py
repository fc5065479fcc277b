"""The run's prompt template, carried into exported models: a chat client that sends the plain text as the
user's message gets the prompt the run was taught with.

A run is asked `template` with {input_text} filled in, as a user turn of the base model's chat template
(core.templates.render_prompt). The exported chat template does the same for any client: it wraps every
user message in the template's text before and after the placeholder, then runs the base model's own
chat template unchanged. The Ollama TEMPLATE (Go template syntax) is the rendered prompt itself with
`{{ .Prompt }}` where the text goes."""
from __future__ import annotations

import json

from core.templates import PLACEHOLDER, render_prompt

# Stands for the user's text while a prompt is rendered; never part of real text.
_SLOT = "\u2063STUDIO-INPUT\u2063"


def _jinja_string(text: str) -> str:
    """A Jinja string literal for `text`: JSON's escapes (\\n, \\", \\\\) are what Jinja's lexer decodes
    (Python's unicode-escape), so the literal is exact whatever the template holds (quotes, braces,
    newlines). Other characters stay as they are: an emoji as JSON's surrogate pair would not survive."""
    return json.dumps(text, ensure_ascii=False)


def wrapped_chat_template(base_template: str | None, run_template: str) -> str:
    """A chat template (Jinja, as Hugging Face tokenizers and llama.cpp read it) that puts each user
    message into the run's prompt template and then applies `base_template`. Without a base chat
    template, the plain-text fallback of core.templates.render_chat_prompt: each message, then a line."""
    before, after = run_template.split(PLACEHOLDER, 1)
    if PLACEHOLDER in after:
        raise ValueError(f"the template holds {PLACEHOLDER} twice; a chat template can fill only one")
    wrap = (
        "{%- set ns = namespace(messages=[]) -%}\n"
        "{%- for message in messages -%}\n"
        "{%- if message['role'] == 'user' -%}\n"
        "{%- set ns.messages = ns.messages + [{'role': 'user', 'content': "
        f"{_jinja_string(before)} ~ message['content'] ~ {_jinja_string(after)}" "}] -%}\n"
        "{%- else -%}\n"
        "{%- set ns.messages = ns.messages + [message] -%}\n"
        "{%- endif -%}\n"
        "{%- endfor -%}\n"
        "{%- set messages = ns.messages -%}\n")
    if base_template:
        return wrap + base_template
    return wrap + "{%- for message in messages %}{{ message['content'] }}\n{% endfor -%}"


def studio_prompt_parts(tokenizer, run_template: str) -> tuple[str, str]:
    """The exact prompt the studio sends, split where the user's text goes: (before, after)."""
    prompt = render_prompt(tokenizer, run_template, _SLOT)
    if prompt.count(_SLOT) != 1:
        raise ValueError("the chat template repeats or drops the user's message; it cannot be exported as a "
                         "single-prompt template")
    before, after = prompt.split(_SLOT)
    return before, after


def _go_literal(text: str) -> str:
    """Text inside a Go template: `{{` would open an action, so it is written as an action printing it."""
    return text.replace("{{", '{{ "{{" }}')


def stop_strings(tokenizer) -> list[str]:
    """Where an answer ends for a runtime that sees text: the end-of-sequence token and the chat
    template's end-of-turn marker when it has one."""
    stops = [t for t in (tokenizer.eos_token, "<|im_end|>", "<|eot_id|>", "<|end|>", "<end_of_turn>")
             if t and t in (tokenizer.get_vocab() or {})]
    return list(dict.fromkeys(stops))


def ollama_modelfile(gguf_name: str, tokenizer, run_template: str, num_ctx: int, description: str) -> str:
    """An Ollama Modelfile for the GGUF file beside it: the studio's own prompt as TEMPLATE, greedy
    answers as the verification used, and the stop tokens."""
    before, after = studio_prompt_parts(tokenizer, run_template)
    # render_prompt leaves BOS out exactly when the tokenizer adds it itself; the GGUF records that
    # (tokenizer.ggml.add_bos_token), so the runtime adds it then, and a literal one stays literal.
    template = _go_literal(before) + "{{ .Prompt }}" + _go_literal(after)
    lines = [f"# {description}", f"FROM ./{gguf_name}", f'TEMPLATE """{template}"""',
             "PARAMETER temperature 0", "PARAMETER top_k 1", f"PARAMETER num_ctx {num_ctx}"]
    lines += [f'PARAMETER stop "{s}"' for s in stop_strings(tokenizer)]
    return "\n".join(lines) + "\n"
