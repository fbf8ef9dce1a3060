from django.apps import AppConfig


class AlertsConfig(AppConfig):
    name = "alerts"
    verbose_name = "Alerts"

    def ready(self):
        # What the history records (failover events, probe results) reaches the incidents here.
        from alerts import metrics, signals  # noqa: F401

        # /metrics serves clusters.metrics' registry; availability joins it from here.
        metrics.register()
