"""The alerts API, mounted at /api/v1/alerts/ (vipanel/urls.py) beside clusters/api, and built
on it: the same token, the same per-method roles (`roles`, checked by RoleByMethod), the same
JSON errors (clusters.api.errors) and the same generated schema (/api/v1/schema/).

Channels: admins only; the URL is write-only, `masked_url` is what reads return. Incidents and
availability: every viewer. Each mutation is one call into alerts.services, whose
Forbidden and ValidationError the API's exception handler answers as 403 and 400 by field.
"""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, mixins, serializers
from rest_framework.response import Response

from alerts import availability, services
from alerts.models import Channel, Delivery, EventKind, Incident
from clusters.api import serializers as s
from clusters.api.serializers import MAX_ID
from clusters.api.views import ApiView, ObjectView
from clusters.models import Cluster
from clusters.roles import ADMIN, VIEWER


class KindsField(serializers.ListField):
    """A list of event kinds; its errors a flat list of messages ({field: [messages]}, as every
    API error), not DRF's {index: [messages]}."""

    def to_internal_value(self, data):
        try:
            return super().to_internal_value(data)
        except serializers.ValidationError as e:
            if not isinstance(e.detail, dict):
                raise
            messages = [f"Item {i}: {m}" for i, ms in e.detail.items() for m in ms]
            raise serializers.ValidationError(messages) from None


class ChannelSerializer(s.ModelCleanSerializer):
    """An alert channel; `url` (an Apprise URL, stored encrypted) is write-only."""

    url = s.StrictCharField(
        write_only=True,
        required=False,
        allow_blank=True,
        help_text="Write-only: stored encrypted, never returned (see masked_url). In a PATCH, "
        "an empty string or leaving it out keeps the stored one.",
    )
    kinds = KindsField(
        # The message names the choices, never echoes what was sent (it may be a secret).
        child=serializers.ChoiceField(
            EventKind.choices,
            error_messages={
                "invalid_choice": f"Not an event kind; use {', '.join(EventKind.values)}.",
            },
        ),
        required=False,
        help_text="The kinds of event to send (all of them when left out on create).",
    )
    clusters = s.StrictPrimaryKeyRelatedField(
        many=True,
        queryset=Cluster.objects.all(),
        required=False,
        help_text="The clusters whose alerts to send, when all_clusters is false.",
    )

    class Meta:
        model = Channel
        fields = [
            "id",
            "name",
            "url",
            "masked_url",
            "kinds",
            "all_clusters",
            "clusters",
            "enabled",
            "created",
            "updated",
        ]
        read_only_fields = ["masked_url", "created", "updated"]

    def validate(self, attrs):
        # The model's rules (and the clusters rule) run in the service, keyed by field.
        return attrs


class DeliverySerializer(s.ModelCleanSerializer):
    class Meta:
        model = Delivery
        fields = [
            "id",
            "channel_name",
            "purpose",
            "state",
            "attempts",
            "error",
            "created",
            "finished",
        ]
        read_only_fields = fields


class IncidentSerializer(s.ModelCleanSerializer):
    deliveries = DeliverySerializer(many=True, read_only=True)

    class Meta:
        model = Incident
        fields = [
            "id",
            "kind",
            "cluster",
            "subject",
            "title",
            "detail",
            "state",
            "started",
            "last_seen",
            "opened",
            "resolved",
            "expected",
            "deliveries",
        ]
        read_only_fields = fields


class WindowSerializer(serializers.Serializer):
    """One window of a VIP's availability (alerts.availability.Availability.as_dict)."""

    window = serializers.CharField(help_text="24h, 7d or 30d.")
    seconds = serializers.FloatField(
        help_text="The time counted: the window, from the VIP's first push at the earliest "
        "(0 for a VIP never pushed)."
    )
    one_holder_seconds = serializers.FloatField()
    no_holder_seconds = serializers.FloatField()
    split_brain_seconds = serializers.FloatField()
    unknown_seconds = serializers.FloatField(
        help_text="Time the panel observed nothing: never counted as up."
    )
    one_holder_share = serializers.FloatField()
    no_holder_share = serializers.FloatField()
    split_brain_share = serializers.FloatField()
    unknown_share = serializers.FloatField()
    failovers = serializers.IntegerField()


class VipAvailabilitySerializer(serializers.Serializer):
    vip = serializers.CharField()
    windows = WindowSerializer(many=True)


class AvailabilitySerializer(serializers.Serializer):
    cluster = serializers.IntegerField()
    vips = VipAvailabilitySerializer(many=True)


# --- Channels --------------------------------------------------------------------------------


@extend_schema(tags=["alerts"])
class ChannelList(mixins.ListModelMixin, ApiView):
    roles = {"GET": ADMIN, "POST": ADMIN}
    serializer_class = ChannelSerializer
    queryset = Channel.objects.prefetch_related("clusters").order_by("name", "pk")

    @extend_schema(summary="Alert channels by name (URLs masked)")
    def get(self, request):
        return self.list(request)

    @extend_schema(summary="Create an alert channel", responses={201: ChannelSerializer})
    def post(self, request):
        body = self.get_serializer(data=request.data)
        body.is_valid(raise_exception=True)
        channel = services.create_channel(request.user, dict(body.validated_data))
        return Response(ChannelSerializer(channel).data, status=201)


@extend_schema(tags=["alerts"])
class ChannelDetail(mixins.RetrieveModelMixin, ObjectView):
    roles = {"GET": ADMIN, "PATCH": ADMIN, "DELETE": ADMIN}
    serializer_class = ChannelSerializer
    queryset = Channel.objects.prefetch_related("clusters")
    pk_kwarg = "channel_id"

    @extend_schema(summary="An alert channel")
    def get(self, request, channel_id):
        return self.retrieve(request)

    @extend_schema(summary="Change an alert channel (any subset of the fields)")
    def patch(self, request, channel_id):
        channel = self.get_object()
        body = self.get_serializer(channel, data=request.data, partial=True)
        body.is_valid(raise_exception=True)
        channel = services.update_channel(request.user, channel, dict(body.validated_data))
        return Response(ChannelSerializer(channel).data)

    @extend_schema(summary="Delete an alert channel", responses={204: None})
    def delete(self, request, channel_id):
        services.delete_channel(request.user, self.get_object())
        return Response(status=204)


@extend_schema(tags=["alerts"])
class ChannelTest(ObjectView):
    roles = {"POST": ADMIN}
    serializer_class = s.EmptySerializer
    queryset = Channel.objects.all()
    pk_kwarg = "channel_id"

    @extend_schema(
        summary="Send a test message; the delivery shows the outcome",
        request=s.EmptySerializer,
        responses={202: DeliverySerializer},
    )
    def post(self, request, channel_id):
        channel = self.get_object()
        s.EmptySerializer(data=request.data).is_valid(raise_exception=True)
        delivery = services.test_channel(request.user, channel)
        return Response(DeliverySerializer(delivery).data, status=202)


# --- Incidents and availability --------------------------------------------------------------


def _cluster_filter(raw):
    try:
        value = int(raw)
    except ValueError:
        value = None
    if value is None or not 1 <= value <= MAX_ID:
        raise exceptions.ValidationError({"cluster": [f"Use a whole number from 1 to {MAX_ID}."]})
    return value


@extend_schema(tags=["alerts"])
class IncidentList(mixins.ListModelMixin, ApiView):
    roles = {"GET": VIEWER}
    serializer_class = IncidentSerializer

    def get_queryset(self):
        incidents = Incident.objects.prefetch_related("deliveries").order_by("-started", "-pk")
        params = self.request.query_params
        if "cluster" in params:
            incidents = incidents.filter(cluster_id=_cluster_filter(params["cluster"]))
        if "state" in params:
            if params["state"] not in Incident.State.values:
                choices = ", ".join(Incident.State.values)
                raise exceptions.ValidationError({"state": [f"Use one of {choices}."]})
            incidents = incidents.filter(state=params["state"])
        return incidents

    @extend_schema(
        summary="Incidents, newest first",
        parameters=[
            OpenApiParameter(
                "cluster",
                {"type": "integer", "minimum": 1, "maximum": MAX_ID},
                description="Only this cluster's.",
            ),
            OpenApiParameter(
                "state",
                OpenApiTypes.STR,
                enum=Incident.State.values,
                description="Only incidents in this state.",
            ),
        ],
    )
    def get(self, request):
        return self.list(request)


@extend_schema(tags=["alerts"])
class IncidentDetail(mixins.RetrieveModelMixin, ObjectView):
    roles = {"GET": VIEWER}
    serializer_class = IncidentSerializer
    queryset = Incident.objects.prefetch_related("deliveries")
    pk_kwarg = "incident_id"

    @extend_schema(summary="An incident with its deliveries")
    def get(self, request, incident_id):
        return self.retrieve(request)


@extend_schema(tags=["alerts"])
class ClusterAvailability(ApiView):
    roles = {"GET": VIEWER}
    serializer_class = AvailabilitySerializer

    @extend_schema(summary="A cluster's availability per VIP: the 24h, 7d and 30d figures")
    def get(self, request, cluster_id):
        cluster = self.cluster()
        return Response(
            {
                "cluster": cluster.pk,
                "vips": [
                    {"vip": vip.address, "windows": [a.as_dict() for a in windows]}
                    for vip, windows in availability.cluster_availability(cluster)
                ],
            }
        )
