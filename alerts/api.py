"""The alerts API on DRF, for the lead to mount next to clusters/api (not wired here: the api
helper is rewriting that package; mount with
``path("api/v1/alerts/", include("alerts.api_urls"))`` and let REST_FRAMEWORK's defaults give
authentication, or set `authentication_classes` to the API token class).

Channels: admins only; the URL is write-only, `masked_url` is what reads return. Incidents and
availability: every viewer. Each mutation is one call into alerts.services.
"""

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import exceptions, mixins, permissions, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from alerts import availability, services
from alerts.models import Channel, Delivery, EventKind, Incident
from clusters import roles
from clusters.models import Cluster


class HasRole(permissions.BasePermission):
    role = roles.VIEWER

    def has_permission(self, request, view):
        return roles.has_role(request.user, self.role)


class IsAdmin(HasRole):
    role = roles.ADMIN


class ChannelSerializer(serializers.ModelSerializer):
    url = serializers.CharField(write_only=True, required=False, allow_blank=True,
                                max_length=2000)
    kinds = serializers.ListField(child=serializers.ChoiceField(EventKind.choices),
                                  required=False)
    clusters = serializers.PrimaryKeyRelatedField(many=True, queryset=Cluster.objects.all(),
                                                  required=False)

    class Meta:
        model = Channel
        fields = ["id", "name", "url", "masked_url", "kinds", "all_clusters", "clusters",
                  "enabled", "created", "updated"]
        read_only_fields = ["masked_url", "created", "updated"]
        # The model's rules run in the service (full_clean), keyed by field.
        extra_kwargs = {"name": {"validators": []}}


class DeliverySerializer(serializers.ModelSerializer):
    class Meta:
        model = Delivery
        fields = ["id", "channel_name", "purpose", "state", "attempts", "error", "created",
                  "finished"]


class IncidentSerializer(serializers.ModelSerializer):
    deliveries = DeliverySerializer(many=True, read_only=True)

    class Meta:
        model = Incident
        fields = ["id", "kind", "cluster", "subject", "title", "detail", "state", "started",
                  "last_seen", "opened", "resolved", "expected", "deliveries"]


def _call(function, *args):
    try:
        return function(*args)
    except DjangoValidationError as e:
        raise exceptions.ValidationError(e.message_dict) from None
    except DjangoPermissionDenied as e:
        raise exceptions.PermissionDenied(str(e)) from None


class ChannelViewSet(viewsets.ModelViewSet):
    queryset = Channel.objects.prefetch_related("clusters")
    serializer_class = ChannelSerializer
    permission_classes = [IsAdmin]

    def perform_create(self, serializer):
        serializer.instance = _call(services.create_channel, self.request.user,
                                    dict(serializer.validated_data))

    def perform_update(self, serializer):
        serializer.instance = _call(services.update_channel, self.request.user,
                                    serializer.instance, dict(serializer.validated_data))

    def perform_destroy(self, instance):
        _call(services.delete_channel, self.request.user, instance)

    @action(detail=True, methods=["post"])
    def test(self, request, pk=None):
        delivery = _call(services.test_channel, request.user, self.get_object())
        return Response(DeliverySerializer(delivery).data, status=202)


class IncidentViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin,
                      viewsets.GenericViewSet):
    queryset = Incident.objects.prefetch_related("deliveries")
    serializer_class = IncidentSerializer
    permission_classes = [HasRole]

    def get_queryset(self):
        qs = super().get_queryset()
        cluster = self.request.query_params.get("cluster", "")
        if cluster.isdigit():
            qs = qs.filter(cluster_id=int(cluster))
        state = self.request.query_params.get("state")
        if state in Incident.State.values:
            qs = qs.filter(state=state)
        return qs


class AvailabilityViewSet(viewsets.ViewSet):
    """GET /availability/<cluster id>/: per VIP, the 24h, 7d and 30d figures."""

    permission_classes = [HasRole]

    def retrieve(self, request, pk=None):
        cluster = Cluster.objects.filter(pk=pk).first() if str(pk).isdigit() else None
        if cluster is None:
            raise exceptions.NotFound("No such cluster.")
        return Response({
            "cluster": cluster.pk,
            "vips": [
                {"vip": vip.address, "windows": [a.as_dict() for a in windows]}
                for vip, windows in availability.cluster_availability(cluster)
            ],
        })
