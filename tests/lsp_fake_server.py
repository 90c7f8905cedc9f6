"""`smallcoder serve` with a small honest fake engine, for tests of protocol behaviour.

The fake answers by the kind of prompt it gets: a fixed continuation for fill-in-the-middle
(or, when the prompt holds a `fake-engine reply: TEXT` line, TEXT, `\n` for a line break: tests
of what reaches the prompt make a file say what the fake should answer; a line of the context
that says `fake-engine reply for NAME: TEXT` wins when the edited file is NAME),
a fixed explanation (or TEXT, when the code shown holds `fake-engine explanation: TEXT`; the last
such line, the one of the code explained, which follows the related code; asked to rewrite a
sentence the index contradicts, the TEXT of `fake-engine rewrite: TEXT`, else DROP), for a
refactor the function it was shown with one comment added, and for
the agent the code shown with the line under a `fake-engine fix: LINE` comment replaced by LINE
(the agent must have found and shown that code), else the fix of examples/' failing test.
$SMALLCODER_FAKE_TOKEN_SECONDS slows it down to model a real generation.
"""

from __future__ import annotations

import os
import re
import sys
from collections import deque
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

if os.environ.get("SMALLCODER_SIMULATE_PLATFORM"):  # Windows or macOS, as tests/portability.py
    from tests.portability import simulate

    simulate(os.environ["SMALLCODER_SIMULATE_PLATFORM"])

from server.serve import serve
from tests.fakes import ScriptedEngine

FIM_REPLY = "    return total / len(values)\n\nprint('unrelated')\n"
EXPLANATION = "It divides the total by the count: the **mean** of `values`."
# The agent's answer: the fix of examples/inventory.py's apply_discount, whatever it is shown.
AGENT_FIX = ("```python\ndef apply_discount(price_cents: int, percent: int) -> int:\n"
             "    if not 0 <= percent <= 100:\n"
             "        raise ValueError(f\"discount must be between 0 and 100, got {percent}\")\n"
             "    return price_cents * (100 - percent) // 100\n```")
EXPLANATION_MARKER = re.compile(r"fake-engine explanation: (.*)")
REWRITE_MARKER = re.compile(r"fake-engine rewrite: (.*)")
CORRECTION_QUESTION = "The workspace index contradicts this sentence of your answer"
FIM_REPLY_MARKER = re.compile(r"fake-engine reply(?: for ([\w.]+))?: (.*)")
# The edited file's name in a FIM prompt: `<|file_sep|>{path}\n<|fim_prefix|>`.
EDITED_FILE = re.compile(r"<\|file_sep\|>([^\n]*)\n<\|fim_prefix\|>")
SHOWN_FUNCTION = re.compile(r"The function:\n```(\w+)\n(.*?)\n```", re.DOTALL)
SHOWN_CODE = re.compile(r"```(\w+)\n(.*?)\n```", re.DOTALL)
# `// fake-engine fix: LINE` (or `#`), and the line under it, which LINE replaces.
FIX_MARKER = re.compile(r"^(?P<marker>[ \t]*(?://|#) fake-engine fix: (?P<line>.*)\n)[ \t]*.*$",
                        re.MULTILINE)


def marked_fix(prompt_text: str) -> str | None:
    """The agent's answer when the code it shows holds a `fake-engine fix:` comment: that code
    block, the line under each such comment replaced by the comment's LINE (indented alike)."""
    for language, code in SHOWN_CODE.findall(prompt_text):
        if FIX_MARKER.search(code):
            fixed = FIX_MARKER.sub(lambda found: found["marker"] + re.match(
                r"[ \t]*", found["marker"]).group(0) + found["line"].strip(), code)
            return f"```{language}\n{fixed}\n```"
    return None


def fim_reply_said(prompt_text: str) -> str | None:
    """What a `fake-engine reply` line asks for: the edited file's own line first, then a
    context line meant for the edited file, then any other (the last of each kind)."""
    own = prompt_text[prompt_text.rfind("<|fim_prefix|>"):]
    edited = EDITED_FILE.findall(prompt_text)
    name = edited[-1].rsplit("/", 1)[-1] if edited else ""
    every = FIM_REPLY_MARKER.findall(prompt_text)
    for found in (FIM_REPLY_MARKER.findall(own), [m for m in every if m[0] == name], every):
        if found:
            return found[-1][1]
    return None


class RuleEngine(ScriptedEngine):
    def __init__(self) -> None:
        super().__init__([""], float(os.environ.get("SMALLCODER_FAKE_TOKEN_SECONDS", "0")))
        # Nobody reads a server process's prompts: a long run (bench/fuzz.py) keeps a few.
        self.prompts, self.prefilled = deque(maxlen=4), deque(maxlen=4)

    def reply_for(self, prompt_text: str) -> str:
        if "<|fim_middle|>" in prompt_text:
            said = fim_reply_said(prompt_text)
            return FIM_REPLY if said is None else f"    {said.strip()}\n".replace("\\n", "\n")
        if CORRECTION_QUESTION in prompt_text:  # Explain's follow-up on a contradicted sentence
            said = REWRITE_MARKER.findall(prompt_text)
            return said[-1] if said else "DROP"
        if prompt_text.startswith("system: ") and "Explain this" in prompt_text:
            # The code explained comes last, after the related code of other files.
            said = EXPLANATION_MARKER.findall(prompt_text)
            return said[-1] if said else EXPLANATION
        if "Find the bug and fix it" in prompt_text:
            return marked_fix(prompt_text) or AGENT_FIX
        shown = SHOWN_FUNCTION.search(prompt_text)
        if shown is None:
            return "I cannot help with that."
        language, function = shown.groups()
        header, _, body = function.partition("\n")
        comment = "#" if language == "python" else "//"
        indent = re.match(r"\s*", body).group(0)
        return f"```{language}\n{header}\n{indent}{comment} rewritten\n{body}\n```"


if __name__ == "__main__":
    serve(engine_factory=lambda _path, _vram_mb: RuleEngine())
