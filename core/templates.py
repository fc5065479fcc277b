"""Prompt templates. One function, render_prompt, turns a row into the exact text the model sees;
training, the playground and evaluation all call it, so a run is always queried the way it was taught."""
from __future__ import annotations

PLACEHOLDER = "{input_text}"

DEFAULT_TEMPLATES = {
    "classification": ("Classify the text into one of these categories: {labels}. "
                       "Answer with the category name only.\n\nText: {input_text}"),
    "summarization": "Summarize the text in one line.\n\nText: {input_text}",
    "text_generation": "{input_text}",
}


def default_template(task: str, labels: list[str] | None = None) -> str:
    """The starting template for a task; for classification it lists the label set of the data."""
    template = DEFAULT_TEMPLATES.get(task, PLACEHOLDER)
    return template.replace("{labels}", ", ".join(labels or []))


def template_for(run_config: dict | None, task: str | None = None, labels: list[str] | None = None,
                 override: str | None = None) -> str:
    """The template a model is asked through, chosen in this one place for evaluation, the playground,
    candidate pairs and `studio generate`: an explicit override; else a run's own template, so a tuned
    run is always asked the way it was taught (its base model too, for a fair comparison); else, for a
    base model alone, the task's default when scoring a task, or the prompt as it is."""
    if override:
        return override
    if run_config and run_config.get("template"):
        return run_config["template"]
    return default_template(task, labels) if task else PLACEHOLDER


def fill_template(template: str, input_text: str) -> str:
    """Put the row's text into the template. str.replace, not str.format: user text and templates
    may hold braces (code, JSON) that format() would choke on."""
    if PLACEHOLDER not in template:
        raise ValueError(f"the template has no {PLACEHOLDER} placeholder")
    return template.replace(PLACEHOLDER, input_text)


def render_prompt(tokenizer, template: str, input_text: str) -> str:
    """The full prompt string: template filled in, wrapped in the model's chat template as a user turn,
    ending where the model's answer begins."""
    return render_chat_prompt(tokenizer, [{"role": "user", "content": fill_template(template, input_text)}])


def render_fitted_prompt(tokenizer, template: str, input_text: str, max_tokens: int | None) -> tuple[str, bool]:
    """render_prompt, with the row's text cut short (its end dropped) so the prompt holds at most
    `max_tokens` tokens; and whether it was cut. Evaluation asks a run this way, within the length it was
    tuned at: a 5,000-token description then costs what a 500-token one does (one such row took a tenth
    of a 300-row evaluation), and the model never reads more than it learned from."""
    prompt = render_prompt(tokenizer, template, input_text)
    if not max_tokens:
        return prompt, False
    over = len(tokenizer(prompt).input_ids) - max_tokens
    if over <= 0:
        return prompt, False
    ids = tokenizer(input_text, add_special_tokens=False).input_ids
    while over > 0 and ids:  # decoding and re-encoding may merge tokens differently: check again
        ids = ids[:max(0, len(ids) - over)]
        prompt = render_prompt(tokenizer, template, tokenizer.decode(ids))
        over = len(tokenizer(prompt).input_ids) - max_tokens
        if over > 0:
            ids = ids[:-1]
    return prompt, True


def render_chat_prompt(tokenizer, messages: list[dict]) -> str:
    """A conversation so far (roles system/user/assistant), ending where the model's next turn begins."""
    if getattr(tokenizer, "chat_template", None):
        text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    else:  # base models without a chat template: plain text, answer on the next line
        text = "".join(m["content"] + "\n" for m in messages)
    # Tokenizers that add BOS themselves would otherwise see it twice when the chat template writes it too.
    bos = getattr(tokenizer, "bos_token", None)
    if bos and text.startswith(bos) and tokenizer("").input_ids[:1] == [tokenizer.bos_token_id]:
        text = text[len(bos):]
    return text


def chat_pairs(tokenizer, messages: list[dict]) -> list[dict]:
    """One prompt/completion pair per model turn, each prompt holding the conversation before it, so a
    multi-turn example trains on every model turn with the loss on that turn only."""
    return [{"prompt": render_chat_prompt(tokenizer, messages[:i]),
             "completion": render_answer(tokenizer, m["content"])}
            for i, m in enumerate(messages) if m["role"] == "assistant" and i > 0]


def render_answer(tokenizer, output_text: str) -> str:
    """The training target after the prompt: the answer closed by the end-of-sequence token,
    so the tuned model learns to stop."""
    return output_text + (tokenizer.eos_token or "")


def training_pairs(tokenizer, template: str, example: dict) -> list[dict]:
    """The prompt/completion pairs one example trains as: one for a prompt → answer row, one per model
    turn for a chat (whose conversation is the prompt; the template does not apply to it)."""
    if "messages" in example:
        return chat_pairs(tokenizer, example["messages"])
    return [{"prompt": render_prompt(tokenizer, template, example["input_text"]),
             "completion": render_answer(tokenizer, example["output_text"])}]
