"""URIs decoded once, as VS Code's `Uri.fsPath` reads them."""

from __future__ import annotations

import pytest

from server.protocol import path_of


@pytest.mark.parametrize("uri, path", [
    ("file:///work/my%20project/a%20b.py", "/work/my project/a b.py"),
    ("file:///work/caf%C3%A9/%E6%97%A5%E6%9C%AC.py", "/work/café/日本.py"),
    ("file:///work/100%25/x.py", "/work/100%/x.py"),
    ("file:///c%3A/Users/me/x.py", "c:/Users/me/x.py"),
    ("file:///C:/Users/me/x.py", "c:/Users/me/x.py"),
    ("file://server/share/x.py", "//server/share/x.py"),
    ("file://localhost/work/x.py", "/work/x.py"),
    ("untitled:Untitled-1", "Untitled-1"),
])
def test_a_file_uri_becomes_the_path_vscode_means(uri, path):
    assert path_of(uri) == path


@pytest.mark.parametrize("uri, path", [
    ("file:///c%3A/Users/me/my%20project/x.py", "c:\\Users\\me\\my project\\x.py"),
    ("file:///D:/", "d:\\"),
    ("file://server/share/x.py", "\\\\server\\share\\x.py"),
])
def test_on_windows_the_path_has_backslashes_as_vscode_gives_it(uri, path):
    # What the server compares with os.walk's paths and the workspace folder's on Windows.
    assert path_of(uri, windows=True) == path


def test_a_percent_sign_in_a_decoded_path_is_not_decoded_again():
    assert path_of("file:///work/%2541.py") == "/work/%41.py"
