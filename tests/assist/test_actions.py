"""Refactor: reply parsing and validation, with scripted model replies."""

from __future__ import annotations

import pytest

from assist.actions import ActionError, Run, refactor
from tests.fakes import ScriptedEngine

METHOD = ("import math\n\n\nclass Shape:\n    def area(self, radius: list[float]) -> float:\n"
          "        return math.pi * radius[0] ** 2\n\n\nx = 1\n")


def _refactor(replies: list[str], text: str = METHOD, line: int = 5, instruction: str = "",
              language: str = "python"):
    engine = ScriptedEngine(replies)
    return refactor(Run(engine), text, language, line, 8, instruction), engine


def test_refactor_keeps_the_original_header_when_the_model_respells_types():
    reply = ("```python\nfrom typing import List\n```\nHere it is:\n```python\n"
             "def area(self, radius: List[float]) -> float:\n    # circle area\n"
             "    r = radius[0]\n    return math.pi * r * r\n```")
    result, _ = _refactor([reply])
    assert result.new_document == METHOD.replace(
        "        return math.pi * radius[0] ** 2\n",
        "        # circle area\n        r = radius[0]\n        return math.pi * r * r\n")


def test_refactor_refuses_renamed_parameters_and_asks_again():
    renamed = "```python\ndef area(self, r: list[float]) -> float:\n    return 3.14 * r[0]\n```"
    fixed = "```python\ndef area(self, radius: list[float]) -> float:\n    return radius[0]\n```"
    result, engine = _refactor([renamed, fixed])
    assert "keep the parameter names" in engine.detokenize(engine.prompts[1])
    assert "        return radius[0]\n" in result.new_document


def test_refactor_may_change_the_signature_when_asked():
    reply = "```python\ndef area(self, r: float) -> float:\n    return math.pi * r ** 2\n```"
    result, _ = _refactor([reply], instruction="rename the parameter to r and take a float")
    assert "    def area(self, r: float) -> float:\n        return math.pi * r ** 2\n" in (
        result.new_document)


def test_refactor_gives_up_with_the_reason_after_its_attempts():
    with pytest.raises(ActionError, match="no function named area"):
        _refactor(["```python\nprint('hello')\n```"])


def test_refactor_that_breaks_the_parse_is_refused():
    broken = "```python\ndef area(self, radius: list[float]) -> float:\n    return (1 +\n```"
    with pytest.raises(ActionError, match="not usable"):
        _refactor([broken])


def test_refactor_with_no_change_says_so():
    same = "```python\ndef area(self, radius: list[float]) -> float:\n" \
           "    return math.pi * radius[0] ** 2\n```"
    with pytest.raises(ActionError, match="suggested no change"):
        _refactor([same])


def test_refactor_outside_a_function_says_where_to_put_the_cursor():
    with pytest.raises(ActionError, match="no function at the cursor"):
        refactor(Run(ScriptedEngine(["x"])), METHOD, "python", 8, 0)


def test_refactor_in_typescript_keeps_the_body_braces():
    text = "export function twice(n: number): number {\n  return n * 2;\n}\n"
    reply = "```ts\nfunction twice(n: number): number {\n  const doubled = n + n;\n" \
            "  return doubled;\n}\n```"
    engine = ScriptedEngine([reply])
    result = refactor(Run(engine), text, "typescript", 1, 2)
    assert result.new_document == ("export function twice(n: number): number {\n"
                                   "  const doubled = n + n;\n  return doubled;\n}\n")


def test_refactor_streams_every_reply_it_asks_for():
    renamed = "```python\ndef area(self, r: list[float]) -> float:\n    return 3.14 * r[0]\n```"
    fixed = "```python\ndef area(self, radius: list[float]) -> float:\n    return radius[0]\n```"
    pieces: list[str] = []
    refactor(Run(ScriptedEngine([renamed, fixed]), on_text=pieces.append), METHOD, "python", 5, 8)
    assert "".join(pieces) == renamed + fixed


def test_a_helper_the_rewrite_extracts_goes_in_front_of_it():
    text = "import math\n\n\ndef hypot(a, b):\n    return math.sqrt(a * a + b * b)\n\n\nx = 1\n"
    reply = ("```python\ndef square(v):\n    return v * v\n\n\ndef hypot(a, b):\n"
             "    return math.sqrt(square(a) + square(b))\n\n\ndef unused():\n    pass\n```")
    result = refactor(Run(ScriptedEngine([reply])), text, "python", 4, 4, "extract a helper")
    assert result.new_document == (
        "import math\n\n\ndef square(v):\n    return v * v\n\n\ndef hypot(a, b):\n"
        "    return math.sqrt(square(a) + square(b))\n\n\nx = 1\n")


def test_refactor_that_only_adds_annotations_keeps_the_original_header():
    text = "def get_factors(n):\n    return [d for d in range(1, n + 1) if n % d == 0]\n"
    reply = ("```python\nfrom typing import List\n\n\ndef get_factors(n: int) -> List[int]:\n"
             "    return [divisor for divisor in range(1, n + 1) if n % divisor == 0]\n```")
    result = refactor(Run(ScriptedEngine([reply])), text, "python", 1, 4)
    assert result.new_document == ("def get_factors(n):\n    return [divisor for divisor in "
                                   "range(1, n + 1) if n % divisor == 0]\n")
