"""The one exception type of the data code."""
from __future__ import annotations

from ..utils.errors import SiamMaskError


class DataError(SiamMaskError):
    """Unreadable or malformed training data (a missing crop, a corrupt image, a malformed annotation json, a
    missing raw dataset). The message is one line and names the file."""
