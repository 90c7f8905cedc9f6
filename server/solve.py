"""`smallcoder/solve`: the agent over LSP, reporting on the client's progress token.

The request runs the loop on the long-job engine and yields to completions between tokens;
`$/cancelRequest` stops generation and kills the running tests. The answer is a WorkspaceEdit
for the user to review: nothing is written here.
"""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path
from typing import Any

from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams

from agent.runner import TestCommandError
from agent.sandbox import FileChange, SandboxError
from agent.solve import Budget, SolveResult, solve
from assist.accepted import fix_changes
from model.engine import CancelToken
from server.app import SmallCoderServer
from server.model_host import ModelUnavailable
from server.progress import ClientProgress
from server.protocol import open_document, optional_field, path_or_uri, whole_text_range

SOLVE_METHOD = "smallcoder/solve"
PROGRESS_TITLE = "SmallCoder: solving with the agent"


def register(server: SmallCoderServer) -> None:
    @server.feature(SOLVE_METHOD)
    async def solve_request(ls: SmallCoderServer, params: Any) -> dict:
        """Runs until green, out of rounds or time, or cancelled; the user's files change only
        when the client applies the returned edit."""
        workspace = _workspace(ls, params)
        test_command = optional_field(params, "testCommand", str) or ls.settings.test_command
        if not test_command:
            raise JsonRpcInvalidParams("no test command: pass params.testCommand or set "
                                       "smallcoder.testCommand")
        max_rounds = optional_field(params, "maxRounds", int)
        budget = Budget(max_copy_bytes=ls.settings.agent_max_copy_mb * 1024**2)
        if max_rounds is not None:
            budget = dataclasses.replace(budget, max_rounds=max(1, max_rounds))
        progress = ClientProgress(ls, optional_field(params, "workDoneToken", (str, int)),
                                  PROGRESS_TITLE, log_prefix="agent")
        cancel = CancelToken()

        def run_agent() -> SolveResult:
            with ls.host.long_job(f"solving the tests of {workspace.name}") as engine:
                return solve(workspace, test_command, budget, engine=engine, cancel=cancel,
                             yield_turn=ls.host.gate.wait_turn, on_progress=progress.report)

        progress.begin()
        try:
            result = await asyncio.to_thread(run_agent)
        except asyncio.CancelledError:
            cancel.cancel()
            raise
        except ModelUnavailable as error:
            raise JsonRpcInvalidParams(f"the model is not ready: {error}") from error
        except (TestCommandError, SandboxError) as error:
            raise JsonRpcInvalidParams(str(error)) from error
        finally:
            progress.end()
        ls.log("info", f"agent: {result.status} after {result.rounds} round(s); "
                       f"transcript {result.transcript}")
        edit = workspace_edit(ls, workspace, result.changes)
        offer_id = None
        if ls.settings.training_learn_from_accepted:
            offer_id = ls.accepted_offers.offer(fix_changes(workspace, test_command, result))
        return {"offerId": offer_id, "status": result.status, "rounds": result.rounds,
                "diff": result.diff,
                "edit": ls.protocol._converter.unstructure(edit),
                "transcript": str(result.transcript), "message": result.message,
                "failingBefore": result.failing_before, "failingAfter": result.failing_after,
                "isolation": result.isolation, "notes": list(result.notes)}


def workspace_edit(ls: SmallCoderServer, workspace: Path,
                   changes: tuple[FileChange, ...]) -> types.WorkspaceEdit:
    """Each changed file replaced whole, from the text the agent started from."""
    document_changes = []
    for change in changes:
        uri = (workspace / change.path).as_uri()
        editor_copy = open_document(ls.workspace, uri)
        version = (editor_copy.version if editor_copy is not None
                   and editor_copy.source == change.old_text else None)
        document_changes.append(types.TextDocumentEdit(
            text_document=types.OptionalVersionedTextDocumentIdentifier(uri=uri,
                                                                        version=version),
            edits=[types.TextEdit(range=whole_text_range(change.old_text),
                                  new_text=change.new_text)]))
    return types.WorkspaceEdit(document_changes=document_changes)


def _workspace(ls: SmallCoderServer, params: Any) -> Path:
    given = optional_field(params, "workspaceFolder", str)
    if given is None:
        folders = list(ls.workspace.folders.values())
        if not folders:
            raise JsonRpcInvalidParams("no workspace folder: pass params.workspaceFolder")
        given = folders[0].uri
    path = Path(path_or_uri(given))
    if not path.is_dir():
        raise JsonRpcInvalidParams(f"workspace folder {path} does not exist")
    return path
