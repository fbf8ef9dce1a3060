from rest_framework.routers import SimpleRouter

from alerts import api

router = SimpleRouter()
router.register("channels", api.ChannelViewSet, basename="alert-channel")
router.register("incidents", api.IncidentViewSet, basename="alert-incident")
router.register("availability", api.AvailabilityViewSet, basename="alert-availability")

urlpatterns = router.urls
