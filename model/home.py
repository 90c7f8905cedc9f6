"""Where SmallCoder keeps what it downloads and makes: $SMALLCODER_HOME, one place.

Models, adapters, indexes, transcripts and compiled wheels all live under it.
"""

from __future__ import annotations

import os
from pathlib import Path


def smallcoder_home() -> Path:
    """The cache directory for models, adapters and indexes ($SMALLCODER_HOME)."""
    configured = os.environ.get("SMALLCODER_HOME")
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "smallcoder"
