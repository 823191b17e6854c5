"""region package."""
