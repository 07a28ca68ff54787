"""manage.py windows --spec JSON: JSON Lines in, window results and late events out."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from continust.pipelines.windows import run_windows


def windows(spec: dict | str, *lines: str, batch_size: int | None = None) -> list[dict]:
    out = StringIO()
    args = ["windows", "--spec", spec if isinstance(spec, str) else json.dumps(spec)]
    if batch_size is not None:
        args += ["--batch-size", str(batch_size)]
    call_command(*args, stdin=StringIO("".join(line + "\n" for line in lines)), stdout=out)
    return [json.loads(line) for line in out.getvalue().splitlines()]


def event(key: str, ts: int, value: float = 1) -> str:
    return json.dumps({"key": key, "ts": ts, "value": value})


def test_it_writes_tumbling_windows_and_late_events():
    """
    a: 1 ---- 1500      b: 10 (after the watermark passed 999: late)
       [0, 1000) [1000, 2000)
    """
    out = windows(
        {"type": "tumbling", "size_ms": 1000},
        event("a", 1, 2),
        event("a", 1500, 3),
        "",
        event("b", 10, 1),
    )
    assert out == [
        {
            "key": "a",
            "start": 0,
            "end": 1000,
            "max_ts": 999,
            "fire": 1,
            "count": 1,
            "sum": 2,
            "min": 2,
            "max": 2,
        },
        {"late": True, "key": "b", "ts": 10, "value": 1},
        {
            "key": "a",
            "start": 1000,
            "end": 2000,
            "max_ts": 1999,
            "fire": 1,
            "count": 1,
            "sum": 3,
            "min": 3,
            "max": 3,
        },
    ]


def test_it_answers_as_the_library_does_for_every_window_type():
    lines = [
        event(k, ts, v)
        for k, ts, v in [
            ("x", 5, 1),
            ("y", 7, 2),
            ("x", 30, 3),
            ("x", 12, 4),
            ("y", 90, 5),
            ("x", 61, 6),
            ("x", 2, 7),
            ("y", 200, 8),
        ]
    ]
    specs = [
        {"type": "tumbling", "size_ms": 20, "offset_ms": 5, "out_of_orderness_ms": 10},
        {"type": "sliding", "size_ms": 30, "slide_ms": 10, "allowed_lateness_ms": 25},
        {"type": "session", "gap_ms": 15, "out_of_orderness_ms": 5, "allowed_lateness_ms": 40},
    ]
    for spec in specs:
        expected = json.loads(json.dumps(list(run_windows(spec, map(json.loads, lines)))))
        assert windows(spec, *lines) == expected
        assert windows(spec, *lines, batch_size=1) == expected


def test_a_window_that_fires_again_within_the_allowed_lateness_says_so():
    out = windows(
        {"type": "tumbling", "size_ms": 10, "allowed_lateness_ms": 100},
        event("k", 1),
        event("k", 15),
        event("k", 2),
    )
    assert [(r["start"], r["fire"], r["count"]) for r in out] == [(0, 1, 1), (0, 2, 2), (10, 1, 1)]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("{not json", "--spec is not valid JSON"),
        ('{"type": "hopping", "size_ms": 5}', "bad window spec: window spec type must be one of"),
        ('{"type": "tumbling"}', "bad window spec: tumbling window spec needs 'size_ms'"),
        ('{"type": "session", "gap_ms": 0}', "bad window spec: session gap_ms must be > 0"),
        ('{"type": "tumbling", "size_ms": 5, "colour": 1}', "unknown field(s)"),
    ],
)
def test_it_refuses_a_bad_spec_in_one_line(spec, message):
    with pytest.raises(CommandError) as caught:
        windows(spec, event("a", 1))
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"key": "a", "ts": 1', "line 2: not JSON"),
        ('{"key": "a", "value": 1}', "line 2: missing 'ts'"),
        ('{"key": "a", "ts": "soon", "value": 1}', "line 2: ts must be an integer"),
        ('{"key": "a", "ts": 3, "value": "ten"}', "line 2: value must be a number"),
        ("[1, 2, 3]", "line 2: expected an object"),
    ],
)
def test_it_names_the_bad_line(line, message):
    with pytest.raises(CommandError) as caught:
        windows({"type": "tumbling", "size_ms": 10}, event("a", 1), line, event("a", 2))
    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value)


def test_it_counts_lines_across_blank_ones():
    with pytest.raises(CommandError, match="^line 4: value must be a number"):
        windows(
            {"type": "tumbling", "size_ms": 10},
            event("a", 1),
            "",
            "  ",
            '{"key": "a", "ts": 2, "value": null}',
        )


def test_it_refuses_a_batch_size_below_one():
    with pytest.raises(CommandError, match="--batch-size must be at least 1"):
        windows({"type": "tumbling", "size_ms": 10}, batch_size=0)
