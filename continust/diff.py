"""Deprecated: moved to ``continust.documents.diff``; this name goes in the next release."""

import warnings

from continust.documents.diff import *  # noqa: F403

warnings.warn(
    "continust.diff moved to continust.documents.diff; the old name goes in the next release",
    DeprecationWarning,
    stacklevel=2,
)
