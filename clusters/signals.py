"""Signals the engine sends where a queryset update() sends no post_save.

Apps that react to the engine (alerts) connect receivers here; clusters never imports them,
so the dependency runs one way only (the import-linter contract in pyproject.toml).
"""

from django.dispatch import Signal

# Sent with `push` (the ConfigPush, its new state set) when a push or drill ends: by
# push._finish and by push.mark_stale_pushes (interrupted).
push_finished = Signal()
