"""Deprecated: moved to ``continust.graph.cache``; this name goes in the next release."""

import warnings

from continust.graph.cache import *  # noqa: F403

warnings.warn(
    "continust.graphs moved to continust.graph.cache; the old name goes in the next release",
    DeprecationWarning,
    stacklevel=2,
)
