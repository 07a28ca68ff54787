"""Deprecated: moved to ``continust.log.store``; this name goes in the next release."""

import warnings

from continust.log.store import *  # noqa: F403

warnings.warn(
    "continust.store moved to continust.log.store; the old name goes in the next release",
    DeprecationWarning,
    stacklevel=2,
)
