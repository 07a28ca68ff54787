"""The registry of named pipeline definitions that Celery, the CLI and the explorer start.

A definition is a function of its parameters that builds the pipeline's parts
afresh for each run::

    @register("clicks", description="Clicks per page in 1-minute windows",
              defaults={"size_ms": 60_000})
    def clicks(params):
        return Definition(
            sources=[LogSource(streams=["web"], types=["click"])],
            stages=[KeyBy(lambda e: e.payload["page"]),
                    WindowStage(Tumbling(params["size_ms"]))],
            sink=WindowResultSink(),
        )

The built-in definitions live in ``continust.pipelines.builtin``; more modules are
imported from the CONTINUST_PIPELINES setting (a list of dotted module names).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from continust.core.errors import ContinustError, NotFound
from continust.pipelines import options
from continust.pipelines.sinks import Sink
from continust.pipelines.sources import LogSource
from continust.pipelines.stages import RESERVED, Stage

__all__ = ["Definition", "InvalidPipeline", "Registered", "definitions", "get", "register"]


class InvalidPipeline(ContinustError):
    """A pipeline definition or parameters that cannot run."""


@dataclass
class Definition:
    """The parts of one run: sources, stages in order, a sink, and the batch sizes.

    ``batch_events`` is the most log positions one poll reads (an epoch's size);
    ``queue_batches`` bounds each queue between two stages, in epochs.
    """

    sources: Sequence[LogSource]
    stages: Sequence[Stage]
    sink: Sink
    batch_events: int = 2000
    queue_batches: int = 2

    def __post_init__(self) -> None:
        if not self.sources:
            raise InvalidPipeline("a pipeline needs at least one source")
        names = [stage.name for stage in self.stages]
        if len(set(names)) != len(names) or RESERVED & set(names):
            raise InvalidPipeline(f"stage names must be unique and not source/sink: {names}")
        if self.batch_events < 1 or self.queue_batches < 1:
            raise InvalidPipeline("batch_events and queue_batches must be at least 1")


Factory = Callable[[Mapping[str, Any]], Definition]


@dataclass(frozen=True)
class Registered:
    """A named definition: its factory, what it does, and its default parameters."""

    name: str
    description: str
    factory: Factory
    defaults: Mapping[str, Any] = field(default_factory=dict)

    def params(self, given: Mapping[str, Any] | None) -> dict[str, Any]:
        """The defaults overridden by ``given``; unknown names are refused."""
        given = dict(given or {})
        unknown = sorted(set(given) - set(self.defaults))
        if unknown:
            raise InvalidPipeline(
                f"pipeline {self.name} has no parameter(s) {', '.join(unknown)}; "
                f"it takes {', '.join(sorted(self.defaults)) or 'none'}"
            )
        return {**self.defaults, **given}

    def build(self, params: Mapping[str, Any] | None = None) -> Definition:
        """Build the pipeline's parts; bad parameters raise InvalidPipeline."""
        try:
            return self.factory(self.params(params))
        except InvalidPipeline:
            raise
        except (KeyError, TypeError, ValueError) as err:
            raise InvalidPipeline(f"pipeline {self.name}: bad parameters: {err}") from err


_registry: dict[str, Registered] = {}
_loaded = False


def register(
    name: str, *, description: str, defaults: Mapping[str, Any] | None = None
) -> Callable[[Factory], Factory]:
    """Register ``factory`` under ``name`` (a slug); registering a name again replaces it."""

    def decorator(factory: Factory) -> Factory:
        _registry[name] = Registered(name, description, factory, dict(defaults or {}))
        return factory

    return decorator


def _load() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    importlib.import_module("continust.pipelines.builtin")
    for module in options.modules():
        importlib.import_module(module)


def definitions() -> list[Registered]:
    """Every registered definition, by name."""
    _load()
    return [_registry[name] for name in sorted(_registry)]


def get(name: str) -> Registered:
    """The definition registered as ``name``."""
    _load()
    try:
        return _registry[name]
    except KeyError:
        known = ", ".join(sorted(_registry)) or "none"
        raise NotFound(f"no pipeline definition {name!r} (known: {known})") from None
