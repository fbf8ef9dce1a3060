"""The one Celery app of vipanel; its settings live in vipanel/settings.py (CELERY_*)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "vipanel.settings")

app = Celery("vipanel")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
