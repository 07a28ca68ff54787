"""Deprecated: moved to ``continust.pipelines.windows``; this name goes in the next release."""

import warnings

from continust.pipelines.windows import *  # noqa: F403

warnings.warn(
    "continust.windows moved to continust.pipelines.windows; the old name goes in the next release",
    DeprecationWarning,
    stacklevel=2,
)
