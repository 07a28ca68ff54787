"""The README's old import paths still work for one release, and say where things went."""

import importlib
import sys

import pytest

MOVED = {
    "continust.projects": ("continust.log.projects", ["create_project", "create_stream"]),
    "continust.store": ("continust.log.store", ["NewEvent", "append", "fork", "merge"]),
    "continust.lookup": ("continust.log.lookup", ["resolve_version"]),
    "continust.graphs": ("continust.graph.cache", ["graph_for"]),
    "continust.states": ("continust.log.states", ["state_of"]),
    "continust.diff": ("continust.documents.diff", ["diff", "three_way_merge"]),
    "continust.integrity": ("continust.audit.integrity", ["verify"]),
    "continust.windows": (
        "continust.pipelines.windows",
        ["Tumbling", "Sliding", "Session", "WindowOperator", "Watermarks", "run_windows"],
    ),
}


@pytest.mark.parametrize("old", sorted(MOVED))
def test_an_old_name_imports_the_same_objects_with_a_deprecation_warning(old):
    new, names = MOVED[old]
    sys.modules.pop(old, None)
    with pytest.warns(DeprecationWarning, match=f"{old} moved to {new}"):
        shim = importlib.import_module(old)
    home = importlib.import_module(new)
    for name in names:
        assert getattr(shim, name) is getattr(home, name)
