from django.apps import AppConfig


class ClustersConfig(AppConfig):
    name = "clusters"
    verbose_name = "Clusters"

    def ready(self):
        # The login receiver that keeps each user's time zone in their session.
        from clusters.web import timezones  # noqa: F401
