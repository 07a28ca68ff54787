"""Deprecated: moved to ``continust.log.projects``; this name goes in the next release."""

import warnings

from continust.log.projects import *  # noqa: F403

warnings.warn(
    "continust.projects moved to continust.log.projects; the old name goes in the next release",
    DeprecationWarning,
    stacklevel=2,
)
