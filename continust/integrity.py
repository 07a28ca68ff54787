"""Deprecated: moved to ``continust.audit.integrity``; this name goes in the next release."""

import warnings

from continust.audit.integrity import *  # noqa: F403

warnings.warn(
    "continust.integrity moved to continust.audit.integrity; the old name goes in the next release",
    DeprecationWarning,
    stacklevel=2,
)
