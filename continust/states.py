"""Deprecated: moved to ``continust.log.states``; this name goes in the next release."""

import warnings

from continust.log.states import *  # noqa: F403

warnings.warn(
    "continust.states moved to continust.log.states; the old name goes in the next release",
    DeprecationWarning,
    stacklevel=2,
)
