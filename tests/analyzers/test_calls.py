"""Callers from the index and whether a call binds to a rewritten Python signature."""

from __future__ import annotations

from pathlib import Path

from analyzers.calls import call_fits, python_call_sites, python_signature, workspace_callers
from analyzers.definitions import definitions
from analyzers.index import WorkspaceIndex

SHAPES = ("class Box:\n    def scale(self, factor, *, keep=False):\n        return factor\n\n"
          "    def grow(self):\n        return self.scale(2, keep=True)\n")
USER = "from shapes import Box\n\n\ndef use(box):\n    return box.scale(3)\n"


def test_callers_are_the_definitions_that_name_the_function(tmp_path: Path):
    (tmp_path / "shapes.py").write_text(SHAPES)
    (tmp_path / "user.py").write_text(USER)
    index = WorkspaceIndex(tmp_path)
    index.refresh()
    scale = next(d for d in definitions(SHAPES, "python") if d.name == "scale")
    callers = workspace_callers(index, "scale", "shapes.py", SHAPES, "python", scale)
    assert [(c.path, c.definition.qualified_name, c.line) for c in callers] == [
        ("shapes.py", "Box.grow", 5), ("user.py", "use", 4)]


def test_a_method_call_binds_without_its_self():
    signature, bound = python_signature("def scale(self, factor, *, keep=False):\n    pass\n")
    sites = python_call_sites("shapes.py", SHAPES, "scale") + python_call_sites(
        "user.py", USER, "scale")
    assert bound and [call_fits(site, signature, bound) for site in sites] == [None, None]


def test_a_dropped_keyword_or_a_new_required_parameter_breaks_a_call():
    sites = python_call_sites("shapes.py", SHAPES, "scale")
    no_keep, bound = python_signature("def scale(self, factor):\n    pass\n")
    assert "keep" in call_fits(sites[0], no_keep, bound)
    more, bound = python_signature("def scale(self, factor, origin, *, keep=False):\n    pass\n")
    assert "origin" in call_fits(sites[0], more, bound)


def test_a_call_that_unpacks_arguments_is_not_judged():
    site = python_call_sites("x.py", "f(*args, **kwargs)\n", "f")[0]
    signature, bound = python_signature("def f():\n    pass\n")
    assert site.unpacks and call_fits(site, signature, bound) is None
