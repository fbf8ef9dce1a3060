from django.apps import AppConfig


class ClustersConfig(AppConfig):
    name = "clusters"
    verbose_name = "Clusters"

    def ready(self):
        # Receivers are connected once the models are loaded (importing them earlier fails).
        from clusters import desired

        desired.connect()
        # The login receiver that keeps each user's time zone in their session.
        from clusters.web import timezones  # noqa: F401
