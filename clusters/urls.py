from django.urls import path

from clusters import views

app_name = "clusters"

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("notify/<int:cluster_id>/", views.notify_report, name="notify"),
]
