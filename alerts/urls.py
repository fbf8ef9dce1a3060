from django.urls import path

from alerts import views

app_name = "alerts"

# Pages answer GET; every change is a POST to its own URL.
urlpatterns = [
    path("", views.incident_list, name="incidents"),
    path("incidents/<int:pk>/", views.incident_detail, name="incident"),
    path("availability/<int:cluster_id>/", views.cluster_availability, name="availability"),
    path("channels/", views.channel_list, name="channels"),
    path("channels/new/", views.channel_new, name="channel-new"),
    path("channels/create/", views.channel_create, name="channel-create"),
    path("channels/<int:pk>/edit/", views.channel_edit, name="channel-edit"),
    path("channels/<int:pk>/update/", views.channel_update, name="channel-update"),
    path("channels/<int:pk>/delete/", views.channel_delete, name="channel-delete"),
    path("channels/<int:pk>/test/", views.channel_test, name="channel-test"),
    path("deliveries/<int:pk>/", views.delivery_status, name="delivery"),
]
