"""Conversions between LSP and SmallCoder's own terms: URIs, positions, ranges and params.

A percent-encoded `file:` URI is decoded here, once; every feature module asks this one.
"""

from __future__ import annotations

import os
import re
from typing import Any
from urllib.parse import unquote, urlparse

from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams
from pygls.workspace import TextDocument, Workspace

from analyzers.functions import FunctionSpan
from analyzers.syntax import language_for_id, language_for_path

WINDOWS_DRIVE = re.compile(r"/[A-Za-z]:(/|$)")
MAX_UINTEGER = 2**31 - 1


def path_of(uri: str, *, windows: bool = os.name == "nt") -> str:
    """The file system path of a `file:` URI, as VS Code's `Uri.fsPath` reads it: percent
    escapes decoded once, a drive letter lower-cased without the slash before it, a host as a
    UNC share, and on Windows backslashes for slashes. Any other URI gives its path."""
    parsed = urlparse(uri)
    if parsed.scheme != "file":
        return parsed.path or uri
    path = unquote(parsed.path)
    if parsed.netloc and parsed.netloc != "localhost":
        path = f"//{unquote(parsed.netloc)}{path}"
    elif WINDOWS_DRIVE.match(path):
        path = path[1].lower() + path[2:]
    return path.replace("/", "\\") if windows else path


def open_document(workspace: Workspace, uri: str) -> TextDocument | None:
    """The editor's copy of `uri`, or None when it is not open. pygls keys documents by the
    decoded URI, and would read a file that is not open from disk, which could be a FIFO."""
    return workspace.text_documents.get(unquote(uri))


def path_or_uri(given: str) -> str:
    """A path given either as a `file:` URI or as a plain path."""
    return path_of(given) if given.startswith("file:") else given


def language_of(document: TextDocument) -> str | None:
    return language_for_id(document.language_id or "") or language_for_path(document.uri)


def cursor(document: TextDocument, position: types.Position) -> tuple[int, int]:
    """A client position as (line, character) in Python string units."""
    converted = document.position_codec.position_from_client_units(document.lines, position)
    return converted.line, converted.character


def span_range(document: TextDocument, span: FunctionSpan) -> types.Range:
    """A function's span as an LSP range in the client's units."""
    source = document.source.encode()
    start = _position_of_byte(source, span.start_byte)
    end = _position_of_byte(source, span.end_byte)
    return document.position_codec.range_to_client_units(document.lines,
                                                         types.Range(start=start, end=end))


def _position_of_byte(source: bytes, offset: int) -> types.Position:
    line = source.count(b"\n", 0, offset)
    line_start = source.rfind(b"\n", 0, offset) + 1
    return types.Position(line=line, character=len(source[line_start:offset].decode()))


def whole_text_range(text: str) -> types.Range:
    """The range of all of `text`, its last column in UTF-16 units as LSP counts them."""
    last_line = text.split("\n")[-1]
    end = types.Position(line=text.count("\n"),
                         character=len(last_line.encode("utf-16-le")) // 2)
    return types.Range(start=types.Position(line=0, character=0), end=end)


def field(params: Any, name: str, kind: type | tuple[type, ...]) -> Any:
    """A field of a custom request's params, or an InvalidParams error saying what is wrong."""
    value = params.get(name) if isinstance(params, dict) else getattr(params, name, None)
    if not isinstance(value, kind):
        raise JsonRpcInvalidParams(f"params.{name} is missing or not a {kind}")
    return value


def optional_field(params: Any, name: str, kind: type | tuple[type, ...]) -> Any:
    """A field of a custom request's params that may be left out (None), or an InvalidParams
    error when it has the wrong type (a bool is not a number here, though Python says so)."""
    value = params.get(name) if isinstance(params, dict) else getattr(params, name, None)
    if value is not None and (not isinstance(value, kind) or isinstance(value, bool)):
        raise JsonRpcInvalidParams(f"params.{name} must be a {kind}")
    return value


def text_position(params: Any) -> tuple[str, types.Position]:
    """The `textDocument.uri` and `position` of a custom request, checked."""
    document = field(params, "textDocument", (dict, tuple))
    uri = field(document, "uri", str)
    position = field(params, "position", (dict, tuple))
    line, character = field(position, "line", int), field(position, "character", int)
    if not (0 <= line <= MAX_UINTEGER and 0 <= character <= MAX_UINTEGER):
        raise JsonRpcInvalidParams(f"params.position must be within 0..{MAX_UINTEGER}, "
                                   f"LSP's uinteger")
    return uri, types.Position(line=line, character=character)
