"""The JSON API under /api/v1/: token-authenticated, one rule set with the forms (full_clean)."""
