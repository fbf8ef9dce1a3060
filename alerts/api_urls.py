"""The alerts API, mounted at /api/v1/alerts/ by vipanel/urls.py (alerts.api says how)."""

from django.urls import path

from alerts import api

app_name = "alerts-api"

urlpatterns = [
    path("channels/", api.ChannelList.as_view(), name="channels"),
    path("channels/<int:channel_id>/", api.ChannelDetail.as_view(), name="channel"),
    path("channels/<int:channel_id>/test/", api.ChannelTest.as_view(), name="channel-test"),
    path("incidents/", api.IncidentList.as_view(), name="incidents"),
    path("incidents/<int:incident_id>/", api.IncidentDetail.as_view(), name="incident"),
    path("availability/<int:cluster_id>/", api.ClusterAvailability.as_view(), name="availability"),
]
