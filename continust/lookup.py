"""Deprecated: moved to ``continust.log.lookup``; this name goes in the next release."""

import warnings

from continust.log.lookup import *  # noqa: F403

warnings.warn(
    "continust.lookup moved to continust.log.lookup; the old name goes in the next release",
    DeprecationWarning,
    stacklevel=2,
)
