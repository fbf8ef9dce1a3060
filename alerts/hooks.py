"""Calls for code that changes state without a save() signal (queryset updates).

Sweeps, notify reports and drills reach the alerts through post_save signals (alerts.signals).
A push ends with ConfigPush.objects.filter(...).update(...), which sends none; without this call
a failed or interrupted push alerts at the next sweep instead (within VIPANEL_SWEEP_INTERVAL).
The engine cannot import alerts (pyproject.toml [tool.importlinter]): it sends
clusters.signals.push_finished, which alerts.signals receives and passes here.
"""

from alerts.signals import evaluate_after_commit


def push_finished(push):
    """After a push ends (push._finish, push.mark_stale_pushes, via clusters.signals): alerts
    on failure or interruption at once, and resolves an earlier failure when this one
    succeeded."""
    evaluate_after_commit(push.cluster_id)
