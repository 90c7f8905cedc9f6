"""A stand-in for SmallCoder's language server that answers with canned results.

Lets the end-to-end tests check the editor side alone (`npm run test:e2e -- --fake-server`):
same LSP contract as the real server, plain JSON-RPC on stdio, no model and no dependencies.
Explain streams its canned text for a few seconds, as a model writes, and a prefill shows as
warming in the log and the status for a while. While the file `training-packages-missing` is in
$FAKE_SERVER_STATE, training lacks its packages; run as `-m pip install …` this script is a pip
that prints pip's lines for a few seconds, writes its arguments to `pip-args.txt` there and
removes that file.
"""

import json
import os
import re
import sys
import threading
import time
from pathlib import Path
from typing import Any

STATUS = {
    "model": "fake-0.5b",
    "adapter": None,
    "state": "ready",
    "message": "fake server for the editor tests",
    "tokensPerSecond": 99.0,
    "warming": None,
}
FUNCTION_START = re.compile(r"^(\s*)(?:async\s+)?def\s+(\w+)")
# Long enough for the tests to see the explanation grow and the status bar say so.
EXPLAIN_SECONDS = 6.0
EXPLAIN_STEPS = 12
WARMING_SECONDS = 3.0
STATE = Path(os.environ.get("FAKE_SERVER_STATE", "."))
TRAINING_PINS = ["torch==2.13.0", "transformers==5.23.0", "peft==0.21.2", "matplotlib==3.11.2"]
PIP_SECONDS = 4.0

documents: dict[str, list[str]] = {}
# The warming timer sends from its own thread.
output_lock = threading.Lock()


def read_message() -> dict[str, Any] | None:
    headers: dict[str, str] = {}
    while True:
        line = sys.stdin.buffer.readline()
        if not line:
            return None
        if line in (b"\r\n", b"\n"):
            break
        name, _, value = line.decode("ascii").partition(":")
        headers[name.strip().lower()] = value.strip()
    body = sys.stdin.buffer.read(int(headers["content-length"]))
    return json.loads(body)


def send(message: dict[str, Any]) -> None:
    body = json.dumps({"jsonrpc": "2.0", **message}).encode()
    with output_lock:
        sys.stdout.buffer.write(f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
        sys.stdout.buffer.flush()


def partial_result(params: dict[str, Any], value: dict[str, Any]) -> None:
    if (token := params.get("partialResultToken")) is not None:
        send({"method": "$/progress", "params": {"token": token, "value": value}})


def prefill(params: dict[str, Any]) -> None:
    """Logs and shows the region as the real server does, then is done with it after a while."""
    name = params["textDocument"]["uri"].rsplit("/", 1)[-1]
    region = f"{name}:{params['position']['line'] + 1}"
    send({"method": "window/logMessage", "params": {"type": 3, "message": f"warming {region}"}})
    STATUS["warming"] = region
    send({"method": "smallcoder/statusChanged", "params": STATUS})

    def done() -> None:
        if STATUS["warming"] == region:
            STATUS["warming"] = None
            send({"method": "smallcoder/statusChanged", "params": STATUS})

    threading.Timer(WARMING_SECONDS, done).start()


def enclosing_function(uri: str, line: int) -> tuple[int, str] | None:
    """The line and name of the `def` above `line`, as the real server finds it with tree-sitter."""
    lines = documents.get(uri, [])
    for number in range(min(line, len(lines) - 1), -1, -1):
        match = FUNCTION_START.match(lines[number])
        if match:
            return number, match.group(2)
    return None


def refactor_edit(uri: str, def_line: int) -> dict[str, Any]:
    position = {"line": def_line, "character": 0}
    comment = "# Rewritten by the fake server.\n"
    return {"changes": {uri: [{"range": {"start": position, "end": position}, "newText": comment}]}}


def solve(params: dict[str, Any]) -> dict[str, Any]:
    """The agent's answer for examples/: apply_discount fixed, as one whole-file edit."""
    folder = params["workspaceFolder"].removeprefix("file://")
    path = f"{folder.rstrip('/')}/inventory.py"
    with open(path, encoding="utf-8") as source:
        old = source.read()
    new = old.replace("price_cents * percent // 100", "price_cents * (100 - percent) // 100")
    end = {"line": old.count("\n"), "character": len(old.split("\n")[-1])}
    edit = {"range": {"start": {"line": 0, "character": 0}, "end": end}, "newText": new}
    return {
        "status": "solved",
        "rounds": 1,
        "diff": "",
        "edit": {"documentChanges": [{"textDocument": {"uri": f"file://{path}", "version": None},
                                      "edits": [edit]}]},
        "transcript": "/tmp/fake-transcript.jsonl",
        "message": "the tests pass with the proposed change",
        "failingBefore": 1,
        "failingAfter": 0,
        "isolation": "none",
        "notes": [],
    }


def missing_training_packages() -> list[str]:
    return TRAINING_PINS if (STATE / "training-packages-missing").exists() else []


def fake_pip(args: list[str]) -> int:
    """pip's lines for a few seconds; the training packages are there afterwards."""
    (STATE / "pip-args.txt").write_text(" ".join(args))
    requirements = [arg for arg in args if "==" in arg]
    names = [pin.split("==")[0] for pin in requirements]
    lines = [*(f"Collecting {pin}" for pin in requirements),
             "  Downloading torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl (190.4 MB)",
             f"Installing collected packages: {', '.join(names)}",
             f"Successfully installed {' '.join(pin.replace('==', '-') for pin in requirements)}"]
    for line in lines:
        print(line, flush=True)
        time.sleep(PIP_SECONDS / len(lines))
    (STATE / "training-packages-missing").unlink(missing_ok=True)
    return 0


def train(params: dict[str, Any]) -> dict[str, Any]:
    """A few training steps reported on the client's token, then an adapter that passed."""
    if missing := missing_training_packages():
        raise RuntimeError(f"training needs the optional packages {', '.join(missing)}")
    token = params.get("workDoneToken")
    steps = 4

    def progress(value: dict[str, Any]) -> None:
        if token is not None:
            send({"method": "$/progress", "params": {"token": token, "value": value}})

    progress({"kind": "begin", "title": "SmallCoder: training a personal adapter",
              "cancellable": True, "percentage": 0})
    for step in range(1, steps + 1):
        time.sleep(0.5)  # long enough for a screenshot of the notification
        progress({"kind": "report", "percentage": 100 * step // steps,
                  "message": f"step {step}/{steps} · loss 1.5 · 99 tokens/s · under a minute left"})
    progress({"kind": "end"})
    # Beside the workspace, inside the test's sandbox.
    folder = Path(params["repositories"][0].removeprefix("file://")).parent / "adapters"
    folder.mkdir(exist_ok=True)
    adapter = folder / "workspace-fake.gguf"
    adapter.write_bytes(b"GGUF")
    report = folder / "workspace-fake.report.md"
    report.write_text("# Personal adapter: workspace-fake\n\n| | base | adapter |\n|---|---|---|\n"
                      "| held-out perplexity | 3.0 | 2.4 |\n")
    return {"adapter": str(adapter), "report": str(report), "guardPassed": True,
            "steps": steps, "tokensPerSecond": 99.0, "stoppedBy": "steps",
            "message": "the adapter kept its score on the guard set"}


def inline_completion(params: dict[str, Any]) -> dict[str, Any]:
    position = params["position"]
    line_text = documents[params["textDocument"]["uri"]][position["line"]]
    typed = line_text[: position["character"]]
    start = {"line": position["line"], "character": 0}
    continuation = ' not values:\n        raise ValueError("median of an empty list")'
    return {
        "items": [{"insertText": typed + continuation, "range": {"start": start, "end": position}}]
    }


def code_actions(params: dict[str, Any]) -> list[dict[str, Any]]:
    uri = params["textDocument"]["uri"]
    found = enclosing_function(uri, params["range"]["start"]["line"])
    if found is None:
        return []
    def_line, _name = found
    data = {"uri": uri, "line": def_line}
    explain = {
        "command": "smallcoder.explainFunction",
        "title": "Explain this function",
        "arguments": [uri, params["range"]["start"]],
    }
    return [
        {"title": "Refactor this function", "kind": "refactor.rewrite", "data": data},
        {"title": "Explain this function", "command": explain},
    ]


def handle(method: str, params: Any) -> Any:
    if method == "initialize":
        return {
            "capabilities": {
                "textDocumentSync": 1,
                "inlineCompletionProvider": True,
                "codeActionProvider": {
                    "resolveProvider": True,
                    "codeActionKinds": ["refactor.rewrite"],
                },
            },
            "serverInfo": {"name": "smallcoder-fake"},
        }
    if method == "textDocument/inlineCompletion":
        return inline_completion(params)
    if method == "textDocument/codeAction":
        return code_actions(params)
    if method == "codeAction/resolve":
        if "data" not in params:  # the explain action: nothing to resolve
            return params
        return {**params, "edit": refactor_edit(params["data"]["uri"], params["data"]["line"])}
    if method in ("smallcoder/explain", "smallcoder/refactor"):
        uri = params["textDocument"]["uri"]
        found = enclosing_function(uri, params["position"]["line"])
        if found is None:
            raise LookupError("the cursor is not inside a function")
        def_line, name = found
        if method == "smallcoder/refactor":
            for tokens in (12, 24, 36):
                partial_result(params, {"functionName": name, "generatedTokens": tokens})
                time.sleep(0.4)
            # As the real server answers without a test command: the static checks only.
            checks = [{"name": "parses", "passed": True, "detail": "the rewritten file parses"},
                      {"name": "signature", "passed": True, "detail": "kept"}]
            return {"edit": refactor_edit(uri, def_line), "functionName": name,
                    "checks": checks}
        markdown = (f"### `{name}`\n\n`{name}` adds things up, one value after the other.\n\n"
                    f"- It is a **fake** explanation, written slowly as a model writes.")
        # Only the answer has the whole text, as with a model that writes until it ends.
        for step in range(1, EXPLAIN_STEPS + 1):
            written = markdown[: len(markdown) * step // (EXPLAIN_STEPS + 1)]
            partial_result(params, {"functionName": name, "markdown": written})
            time.sleep(EXPLAIN_SECONDS / EXPLAIN_STEPS)
        return {"markdown": markdown, "functionName": name}
    if method == "smallcoder/solve":
        return solve(params)
    if method == "smallcoder/train":
        return train(params)
    if method == "smallcoder/trainingPackages":
        return {"missing": missing_training_packages()}
    if method == "smallcoder/status":
        return STATUS
    if method == "smallcoder/downloadModel":
        return {"path": "/tmp/fake.gguf"}
    if method == "shutdown":
        return None
    raise NotImplementedError(method)


def notice(method: str, params: Any) -> None:
    if method == "textDocument/didOpen":
        documents[params["textDocument"]["uri"]] = params["textDocument"]["text"].split("\n")
    elif method == "textDocument/didChange":
        documents[params["textDocument"]["uri"]] = params["contentChanges"][-1]["text"].split("\n")
    elif method == "smallcoder/prefill":
        prefill(params)
    elif method == "initialized":
        send({"method": "smallcoder/statusChanged", "params": STATUS})
    elif method == "exit":
        sys.exit(0)


def main() -> None:
    while (message := read_message()) is not None:
        method, params = message.get("method"), message.get("params")
        if "id" not in message:
            notice(method, params)
            continue
        try:
            send({"id": message["id"], "result": handle(method, params)})
        except Exception as error:  # every failure goes back to the client, as pygls does
            send({"id": message["id"], "error": {"code": -32603, "message": str(error)}})


if __name__ == "__main__":
    if sys.argv[1:3] == ["-m", "pip"]:
        sys.exit(fake_pip(sys.argv[3:]))
    main()
