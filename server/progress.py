"""Work-done progress on a token the client created for a long custom request (solve, train).

The client creates the token so that its notification has a Cancel button bound to the request;
the server only reports on it, from the event loop or from a worker thread.
"""

from __future__ import annotations

from lsprotocol import types

from server.app import SmallCoderServer


class ClientProgress:
    """Reports on a token the client created; silent when it gave none. Every message also goes
    to the log, so a client without progress support still shows what happened."""

    def __init__(self, ls: SmallCoderServer, token: str | int | None, title: str,
                 log_prefix: str) -> None:
        self.ls, self.token, self.title, self.log_prefix = ls, token, title, log_prefix

    def begin(self, percentage: int | None = None) -> None:
        if self.token is not None:
            self.ls.work_done_progress.begin(self.token, types.WorkDoneProgressBegin(
                title=self.title, cancellable=True, percentage=percentage))

    def report(self, message: str, percentage: int | None = None) -> None:
        """Safe from any thread: the notification is sent from the event loop."""
        self.ls.log("info", f"{self.log_prefix}: {message}")
        if self.token is not None:
            token = self.token
            self.ls._from_any_thread(lambda: self.ls.work_done_progress.report(
                token, types.WorkDoneProgressReport(message=message, percentage=percentage)))

    def end(self) -> None:
        if self.token is not None:
            self.ls.work_done_progress.end(self.token, types.WorkDoneProgressEnd())
