"""The JSON API's views (Django REST Framework). `urls.py` maps them to /api/v1/.

Every view names the role each method needs (`roles`, checked by permissions.RoleByMethod).
Every mutation is ONE call to clusters/api/actions.py inside perform_create / perform_update /
perform_destroy or the action's post(), with the signature of the matching service function.
Secrets are accepted and never returned.
"""

import datetime as dt

from django.http import Http404
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from drf_spectacular.renderers import OpenApiJsonRenderer2
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from drf_spectacular.views import SpectacularJSONAPIView, SpectacularSwaggerView
from rest_framework import exceptions, generics, mixins, status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response

from clusters.api import actions
from clusters.api import serializers as s
from clusters.api.serializers import MAX_ID
from clusters.models import (
    Cluster,
    ConfigPush,
    FailoverEvent,
    Node,
    SSHCredential,
    SyncGroup,
    VirtualIP,
    VrrpInstance,
)
from clusters.roles import ADMIN, OPERATOR, VIEWER

CONFLICT = OpenApiResponse(description="Not possible in the current state")


def get_or_404(queryset, pk):
    if pk > MAX_ID:  # no such row, and more than the database's integer could even look up
        raise Http404
    try:
        return queryset.get(pk=pk)
    except queryset.model.DoesNotExist:
        raise Http404 from None


class ApiView(generics.GenericAPIView):
    """Method first (405), then token (401), then role (403), then the object (404)."""

    # No HEAD or OPTIONS: the API answers what its schema names.
    http_method_names = ["get", "post", "put", "patch", "delete"]
    roles: dict = {}

    @property
    def allowed_methods(self):
        return sorted(m.upper() for m in self.http_method_names if hasattr(self, m))

    def initial(self, request, *args, **kwargs):
        if request.method.upper() not in self.allowed_methods:
            raise exceptions.MethodNotAllowed(request.method)
        super().initial(request, *args, **kwargs)

    def cluster(self):
        return get_or_404(Cluster.objects.all(), self.kwargs["cluster_id"])

    def get_serializer_context(self):
        context = super().get_serializer_context()
        if "cluster_id" in self.kwargs and self.request.method == "POST":
            context["parent"] = {"cluster": self.cluster()}
        return context


class ObjectView(ApiView):
    pk_kwarg = ""

    def get_object(self):
        obj = get_or_404(self.get_queryset(), self.kwargs[self.pk_kwarg])
        self.check_object_permissions(self.request, obj)
        return obj


# --- Schema ----------------------------------------------------------------------------------


class SchemaView(SpectacularJSONAPIView):
    """The OpenAPI 3 document, generated from the views below (no token needed)."""

    renderer_classes = [OpenApiJsonRenderer2]
    authentication_classes = []
    permission_classes = [AllowAny]


class DocsView(SpectacularSwaggerView):
    """Swagger UI for the schema, from static files (drf-spectacular-sidecar): no CDN."""

    authentication_classes = []
    permission_classes = [AllowAny]
    url_name = "api:schema"


# --- Credentials -----------------------------------------------------------------------------


# Operators pick a credential for a cluster or node, so they see names and user names (never a
# secret); viewers do not need them, as in the panel.
@extend_schema(tags=["credentials"])
class CredentialList(mixins.ListModelMixin, mixins.CreateModelMixin, ApiView):
    roles = {"GET": OPERATOR, "POST": ADMIN}
    serializer_class = s.CredentialSerializer
    queryset = SSHCredential.objects.defer("private_key", "passphrase").order_by("name", "pk")

    @extend_schema(summary="SSH credentials: names and user names only")
    def get(self, request):
        return self.list(request)

    @extend_schema(
        summary="Store an SSH credential (the key and passphrase are write-only)",
        responses={201: s.CredentialSerializer},
    )
    def post(self, request):
        return self.create(request)

    def perform_create(self, serializer):
        serializer.instance = actions.create_credential(
            self.request.user, serializer.validated_data
        )


# --- Clusters --------------------------------------------------------------------------------


@extend_schema(tags=["clusters"])
class ClusterList(mixins.ListModelMixin, mixins.CreateModelMixin, ApiView):
    roles = {"GET": VIEWER, "POST": OPERATOR}
    serializer_class = s.ClusterSerializer
    queryset = Cluster.objects.defer("notify_secret").order_by("name", "pk")

    @extend_schema(summary="Clusters by name")
    def get(self, request):
        return self.list(request)

    @extend_schema(
        summary="Create a cluster",
        responses={201: s.ClusterSerializer},
    )
    def post(self, request):
        return self.create(request)

    def perform_create(self, serializer):
        serializer.instance = actions.create_cluster(self.request.user, serializer.validated_data)


@extend_schema(tags=["clusters"])
class ClusterDetail(
    mixins.RetrieveModelMixin, mixins.UpdateModelMixin, mixins.DestroyModelMixin, ObjectView
):
    roles = {"GET": VIEWER, "PATCH": OPERATOR, "DELETE": OPERATOR}
    serializer_class = s.ClusterSerializer
    queryset = Cluster.objects.all()
    pk_kwarg = "cluster_id"

    @extend_schema(summary="A cluster")
    def get(self, request, cluster_id):
        return self.retrieve(request)

    @extend_schema(summary="Change a cluster (any subset of the fields)")
    def patch(self, request, cluster_id):
        return self.partial_update(request)

    @extend_schema(
        summary="Delete a cluster with its nodes, VIPs and history (409 while a push is active)",
        responses={204: None, 409: CONFLICT},
    )
    def delete(self, request, cluster_id):
        return self.destroy(request)

    def perform_update(self, serializer):
        serializer.instance = actions.update_cluster(
            self.request.user, serializer.instance, serializer.validated_data
        )

    def perform_destroy(self, instance):
        actions.delete_cluster(self.request.user, instance)


# --- Nodes -----------------------------------------------------------------------------------


@extend_schema(tags=["nodes"])
class NodeList(mixins.ListModelMixin, mixins.CreateModelMixin, ApiView):
    roles = {"GET": VIEWER, "POST": OPERATOR}
    serializer_class = s.NodeSerializer

    def get_queryset(self):
        return Node.objects.filter(cluster=self.cluster()).order_by("-priority", "pk")

    @extend_schema(summary="A cluster's nodes, highest priority first")
    def get(self, request, cluster_id):
        return self.list(request)

    @extend_schema(
        summary="Add a node",
        responses={201: s.NodeSerializer},
    )
    def post(self, request, cluster_id):
        return self.create(request)

    def perform_create(self, serializer):
        serializer.instance = actions.create_node(
            self.request.user, serializer.context["parent"]["cluster"], serializer.validated_data
        )


@extend_schema(tags=["nodes"])
class NodeDetail(
    mixins.RetrieveModelMixin, mixins.UpdateModelMixin, mixins.DestroyModelMixin, ObjectView
):
    roles = {"GET": VIEWER, "PATCH": OPERATOR, "DELETE": OPERATOR}
    serializer_class = s.NodeSerializer
    queryset = Node.objects.select_related("cluster")
    pk_kwarg = "node_id"

    @extend_schema(summary="A node")
    def get(self, request, node_id):
        return self.retrieve(request)

    @extend_schema(
        summary="Change a node (any subset of the fields); a change of maintenance pushes",
        responses={200: s.NodeSerializer, 409: CONFLICT},
    )
    def patch(self, request, node_id):
        return self.partial_update(request)

    @extend_schema(summary="Delete a node", responses={204: None})
    def delete(self, request, node_id):
        return self.destroy(request)

    def perform_update(self, serializer):
        serializer.instance = actions.update_node(
            self.request.user, serializer.instance, serializer.validated_data
        )

    def perform_destroy(self, instance):
        actions.delete_node(self.request.user, instance)


@extend_schema(tags=["nodes"])
class NodeRepin(ObjectView):
    roles = {"POST": OPERATOR}
    serializer_class = s.RepinSerializer
    queryset = Node.objects.select_related("cluster")
    pk_kwarg = "node_id"

    @extend_schema(
        summary="Accept the host key the node now offers (409 when it offers none)",
        request=s.RepinSerializer,
        responses={200: s.NodeSerializer, 409: CONFLICT},
    )
    def post(self, request, node_id):
        node = self.get_object()
        body = s.RepinSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        node = actions.trust_host_key(request.user, node, body.validated_data.get("fingerprint"))
        return Response(s.NodeSerializer(node).data)


# --- Virtual IPs -----------------------------------------------------------------------------


@extend_schema(tags=["vips"])
class VipList(mixins.ListModelMixin, mixins.CreateModelMixin, ApiView):
    roles = {"GET": VIEWER, "POST": OPERATOR}
    serializer_class = s.VirtualIPSerializer

    def get_queryset(self):
        return VirtualIP.objects.filter(cluster=self.cluster()).order_by("pk")

    @extend_schema(summary="A cluster's virtual IPs")
    def get(self, request, cluster_id):
        return self.list(request)

    @extend_schema(
        summary="Add a virtual IP",
        responses={201: s.VirtualIPSerializer},
    )
    def post(self, request, cluster_id):
        return self.create(request)

    def perform_create(self, serializer):
        serializer.instance = actions.create_vip(
            self.request.user, serializer.context["parent"]["cluster"], serializer.validated_data
        )


@extend_schema(tags=["vips"])
class VipDetail(mixins.RetrieveModelMixin, mixins.DestroyModelMixin, ObjectView):
    roles = {"GET": VIEWER, "DELETE": OPERATOR}
    serializer_class = s.VirtualIPSerializer
    queryset = VirtualIP.objects.select_related("cluster")
    pk_kwarg = "vip_id"

    @extend_schema(summary="A virtual IP")
    def get(self, request, vip_id):
        return self.retrieve(request)

    @extend_schema(summary="Delete a virtual IP", responses={204: None})
    def delete(self, request, vip_id):
        return self.destroy(request)

    def perform_destroy(self, instance):
        actions.delete_vip(self.request.user, instance)


# --- VRRP instances and sync groups ------------------------------------------------------------


@extend_schema(tags=["instances"])
class InstanceList(mixins.ListModelMixin, mixins.CreateModelMixin, ApiView):
    roles = {"GET": VIEWER, "POST": OPERATOR}
    serializer_class = s.VrrpInstanceSerializer

    def get_queryset(self):
        return (
            VrrpInstance.objects.filter(cluster=self.cluster())
            .select_related("cluster")
            .order_by("pk")
        )

    @extend_schema(summary="A cluster's further VRRP instances (the main one is the cluster)")
    def get(self, request, cluster_id):
        return self.list(request)

    @extend_schema(
        summary="Add a VRRP instance (every node gets its main priority in it)",
        responses={201: s.VrrpInstanceSerializer},
    )
    def post(self, request, cluster_id):
        return self.create(request)

    def perform_create(self, serializer):
        serializer.instance = actions.create_instance(
            self.request.user, serializer.context["parent"]["cluster"], serializer.validated_data
        )


@extend_schema(tags=["instances"])
class InstanceDetail(
    mixins.RetrieveModelMixin, mixins.UpdateModelMixin, mixins.DestroyModelMixin, ObjectView
):
    roles = {"GET": VIEWER, "PATCH": OPERATOR, "DELETE": OPERATOR}
    serializer_class = s.VrrpInstanceSerializer
    queryset = VrrpInstance.objects.select_related("cluster")
    pk_kwarg = "instance_id"

    @extend_schema(summary="A VRRP instance")
    def get(self, request, instance_id):
        return self.retrieve(request)

    @extend_schema(summary="Change a VRRP instance (any subset of the fields)")
    def patch(self, request, instance_id):
        return self.partial_update(request)

    @extend_schema(summary="Delete a VRRP instance and its VIPs", responses={204: None})
    def delete(self, request, instance_id):
        return self.destroy(request)

    def perform_update(self, serializer):
        serializer.instance = actions.update_instance(
            self.request.user, serializer.instance, serializer.validated_data
        )

    def perform_destroy(self, instance):
        actions.delete_instance(self.request.user, instance)


@extend_schema(tags=["instances"])
class InstancePriority(ObjectView):
    roles = {"POST": OPERATOR}
    serializer_class = s.NodePrioritySerializer
    queryset = VrrpInstance.objects.select_related("cluster")
    pk_kwarg = "instance_id"

    @extend_schema(
        summary="Set a node's priority in the instance",
        responses={200: s.VrrpInstanceSerializer},
    )
    def post(self, request, instance_id):
        instance = self.get_object()
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        actions.set_priority(
            request.user,
            instance,
            serializer.validated_data["node"],
            serializer.validated_data["priority"],
        )
        return Response(s.VrrpInstanceSerializer(instance).data)


@extend_schema(tags=["instances"])
class SyncGroupList(mixins.ListModelMixin, mixins.CreateModelMixin, ApiView):
    roles = {"GET": VIEWER, "POST": OPERATOR}
    serializer_class = s.SyncGroupSerializer

    def get_queryset(self):
        return SyncGroup.objects.filter(cluster=self.cluster()).order_by("name")

    @extend_schema(summary="A cluster's sync groups")
    def get(self, request, cluster_id):
        return self.list(request)

    @extend_schema(summary="Add a sync group", responses={201: s.SyncGroupSerializer})
    def post(self, request, cluster_id):
        return self.create(request)

    def perform_create(self, serializer):
        serializer.instance = actions.create_sync_group(
            self.request.user, serializer.context["parent"]["cluster"], serializer.validated_data
        )


@extend_schema(tags=["instances"])
class SyncGroupDetail(
    mixins.RetrieveModelMixin, mixins.UpdateModelMixin, mixins.DestroyModelMixin, ObjectView
):
    roles = {"GET": VIEWER, "PATCH": OPERATOR, "DELETE": OPERATOR}
    serializer_class = s.SyncGroupSerializer
    queryset = SyncGroup.objects.select_related("cluster")
    pk_kwarg = "group_id"

    @extend_schema(summary="A sync group")
    def get(self, request, group_id):
        return self.retrieve(request)

    @extend_schema(summary="Change a sync group's name or whether the main instance is in it")
    def patch(self, request, group_id):
        return self.partial_update(request)

    @extend_schema(summary="Delete a sync group (its instances stay)", responses={204: None})
    def delete(self, request, group_id):
        return self.destroy(request)

    def perform_update(self, serializer):
        serializer.instance = actions.update_sync_group(
            self.request.user, serializer.instance, serializer.validated_data
        )

    def perform_destroy(self, instance):
        actions.delete_sync_group(self.request.user, instance)


# --- Pushes ----------------------------------------------------------------------------------


def push_body(push):
    return s.PushSerializer(push, context={"secrets": s.cluster_secrets(push.cluster)}).data


def empty_body(request):
    s.EmptySerializer(data=request.data).is_valid(raise_exception=True)


def push_request(request):
    """confirm and skip, when sent (s.PushRequestSerializer), as the service's keywords."""
    body = s.PushRequestSerializer(data=request.data)
    body.is_valid(raise_exception=True)
    return dict(body.validated_data)


@extend_schema(tags=["pushes"])
class PushList(mixins.ListModelMixin, ApiView):
    roles = {"GET": VIEWER, "POST": OPERATOR}
    serializer_class = s.PushSummarySerializer

    def get_queryset(self):
        return ConfigPush.objects.filter(cluster=self.cluster()).order_by("-created", "-pk")

    @extend_schema(summary="A cluster's pushes, newest first")
    def get(self, request, cluster_id):
        return self.list(request)

    @extend_schema(
        summary="Start a rolling push (400 when the cluster is not ready, 409 while another runs "
        "or a node it must change is unreachable and not skipped)",
        request=s.PushRequestSerializer,
        responses={202: s.PushSerializer, 409: CONFLICT},
    )
    def post(self, request, cluster_id):
        cluster = self.cluster()
        body = push_request(request)
        push = actions.start_cluster_push(request.user, cluster, **body)
        return Response(push_body(push), status=status.HTTP_202_ACCEPTED)


@extend_schema(tags=["pushes"])
class PushDetail(mixins.RetrieveModelMixin, ObjectView):
    roles = {"GET": VIEWER}
    serializer_class = s.PushSerializer
    queryset = ConfigPush.objects.select_related("cluster", "requested_by")
    pk_kwarg = "push_id"

    @extend_schema(summary="A push and its steps")
    def get(self, request, push_id):
        return Response(push_body(self.get_object()))


@extend_schema(tags=["pushes"])
class PushResume(ObjectView):
    roles = {"POST": OPERATOR}
    serializer_class = s.PushSerializer
    queryset = ConfigPush.objects.select_related("cluster", "requested_by")
    pk_kwarg = "push_id"

    @extend_schema(
        summary="Resume a failed or interrupted push (409 otherwise); skip leaves out nodes "
        "that cannot be reached",
        request=s.PushRequestSerializer,
        responses={202: s.PushSerializer, 409: CONFLICT},
    )
    def post(self, request, push_id):
        push = self.get_object()
        body = push_request(request)
        push = actions.resume_cluster_push(request.user, push, **body)
        return Response(push_body(push), status=status.HTTP_202_ACCEPTED)


# --- Preview, status, failovers --------------------------------------------------------------


@extend_schema(tags=["status"])
class ClusterPreview(ApiView):
    # An operator's action everywhere: it connects to every node and reads its config.
    roles = {"GET": OPERATOR}
    serializer_class = s.PreviewSerializer

    @extend_schema(
        summary="What a push would change on each node (reads the live files over SSH) and what "
        "it would do to the VIPs",
        parameters=[
            OpenApiParameter(
                "skip",
                OpenApiTypes.STR,
                many=True,
                description="A node to leave out (not read), as a push's skip would; repeat it "
                "for several.",
            )
        ],
    )
    def get(self, request, cluster_id):
        cluster = self.cluster()
        secrets = s.cluster_secrets(cluster)
        result = actions.preview(request.user, cluster, skip=request.query_params.getlist("skip"))
        nodes = []
        for node_preview in result.nodes:
            row = node_preview.as_dict()
            for key in ("diff", "error", "rendered"):
                row[key] = s.scrub(row[key], secrets)
            nodes.append(row)
        return Response(
            {
                "cluster": cluster.pk,
                "nodes": nodes,
                "impact": result.impact.as_dict(),
                "unreachable": result.unreachable,
                "blocked": result.blocked,
            }
        )


IMPACT_ACTIONS = ["push", "maintenance-on", "maintenance-off", "drill", "delete"]


@extend_schema(tags=["status"])
class ClusterImpact(ApiView):
    # An operator's question: the answer for a push reads every node over SSH.
    roles = {"GET": OPERATOR}
    serializer_class = s.ImpactSerializer

    @extend_schema(
        summary="What an action would do to the VIPs before it runs (the panel's confirmation)",
        parameters=[
            OpenApiParameter(
                "action", OpenApiTypes.STR, enum=IMPACT_ACTIONS, description="Default: push."
            ),
            OpenApiParameter(
                "node", OpenApiTypes.INT, description="maintenance-*: the node; delete: a node."
            ),
            OpenApiParameter("vip", OpenApiTypes.INT, description="delete: a VIP."),
            OpenApiParameter(
                "instance",
                OpenApiTypes.INT,
                description="drill: the instance (default the main one); delete: an instance.",
            ),
        ],
    )
    def get(self, request, cluster_id):
        cluster = self.cluster()
        params = request.query_params
        action = params.get("action", "push")
        if action not in IMPACT_ACTIONS:
            raise exceptions.ValidationError(
                {"action": [f"Pick one of {', '.join(IMPACT_ACTIONS)}."]}
            )
        # Which object each action takes; any other parameter is refused by name.
        takes = {
            "push": (),
            "maintenance-on": ("node",),
            "maintenance-off": ("node",),
            "drill": ("instance",),
            "delete": ("node", "vip", "instance"),
        }[action]
        models = {"node": Node, "vip": VirtualIP, "instance": VrrpInstance}
        given = [name for name in models if params.get(name)]
        wrong = [name for name in given if name not in takes] + given[1:]
        if wrong:
            raise exceptions.ValidationError(
                {
                    name: [f"action={action} takes {' or '.join(takes) or 'no object'}."]
                    for name in wrong
                }
            )
        obj = None
        if given:
            raw = params[given[0]]
            if not raw.isdigit():
                raise exceptions.ValidationError({given[0]: ["Send an id (a number)."]})
            obj = get_or_404(models[given[0]].objects.filter(cluster=cluster), int(raw))
        if action.startswith("maintenance") and obj is None:
            raise exceptions.ValidationError({"node": ["Name the node (its id)."]})
        return Response(actions.impact(request.user, cluster, action, obj).as_dict())


@extend_schema(tags=["status"])
class ClusterStatus(ApiView):
    roles = {"GET": VIEWER}
    serializer_class = s.StatusSerializer

    @extend_schema(summary="What the last sweep saw: VIP holders, node states, split brain")
    def get(self, request, cluster_id):
        return Response(s.status_dict(self.cluster()))


@extend_schema(tags=["status"])
class ClusterRefresh(ApiView):
    roles = {"POST": OPERATOR}
    serializer_class = s.RefreshSerializer

    @extend_schema(
        summary="Probe every node now, record it (as a sweep would), and return the status",
        request=None,
        responses={200: s.RefreshSerializer},
    )
    def post(self, request, cluster_id):
        cluster = self.cluster()
        empty_body(request)
        events = actions.refresh_status(request.user, cluster)
        data = s.status_dict(cluster)
        data["events"] = s.FailoverSerializer(events, many=True).data
        return Response(data)


def parse_since(raw):
    """An ISO 8601 time (naive: the server's TIME_ZONE), or a 400 naming `since`."""
    value = None
    # A '+' in a query string arrives as a space: 2025-01-01T00:00:00+00:00 unencoded.
    for candidate in (raw, raw.replace(" ", "+")):
        try:
            value = parse_datetime(candidate)
        except ValueError:
            value = None
        if value is not None:
            break
    if value is None:
        raise exceptions.ValidationError(
            {"since": ["Use an ISO 8601 date and time, e.g. 2025-01-31T12:00:00Z."]}
        )
    if timezone.is_naive(value):
        try:
            value = timezone.make_aware(value)
        except (OverflowError, ValueError):  # the TIME_ZONE offset pushes it past year 1 or 9999
            return dt.datetime.min.replace(tzinfo=dt.UTC) if value.year < 5000 else _LAST
    # In UTC: PostgreSQL refuses offsets beyond +-15:59 (Python accepts up to +-23:59).
    try:
        return value.astimezone(dt.UTC)
    except OverflowError:  # before year 1 or after 9999 once in UTC: every event, or none
        return dt.datetime.min.replace(tzinfo=dt.UTC) if value.year < 5000 else _LAST


_LAST = dt.datetime.max.replace(tzinfo=dt.UTC)


@extend_schema(tags=["status"])
class ClusterFailovers(mixins.ListModelMixin, ApiView):
    roles = {"GET": VIEWER}
    serializer_class = s.FailoverSerializer

    def get_queryset(self):
        events = FailoverEvent.objects.filter(cluster=self.cluster()).order_by("-at", "-pk")
        raw = self.request.query_params.get("since")
        if raw:
            events = events.filter(at__gte=parse_since(raw))
        return events

    @extend_schema(
        summary="Failover history, newest first",
        parameters=[
            OpenApiParameter(
                "since",
                OpenApiTypes.DATETIME,
                allow_blank=True,
                description="Only events at or after this ISO 8601 time (no offset: the "
                "server's TIME_ZONE).",
            )
        ],
    )
    def get(self, request, cluster_id):
        return self.list(request)


# --- Adopting a running cluster --------------------------------------------------------------


@extend_schema(tags=["adopt"])
class AdoptKeys(ApiView):
    roles = {"POST": OPERATOR}
    serializer_class = s.AdoptKeysSerializer

    @extend_schema(
        summary="Step 1 of adopting: the host key each node offers (compare before trusting)",
        request=s.AdoptKeysSerializer,
        responses={200: s.AdoptKeysAnswerSerializer},
    )
    def post(self, request):
        data = _adopt_body(s.AdoptKeysSerializer, request)
        offers = actions.scan_host_keys(request.user, data["nodes"], data["credential"])
        return Response(
            {
                "nodes": [
                    {
                        "key": o.key,
                        "address": o.address,
                        "ssh_port": o.ssh_port,
                        "offered": o.offered,
                        "given": o.given,
                        "matches": o.matches,
                        "error": o.error,
                    }
                    for o in offers
                ]
            }
        )


@extend_schema(tags=["adopt"])
class AdoptRead(ApiView):
    roles = {"POST": OPERATOR}
    serializer_class = s.AdoptReadSerializer

    @extend_schema(
        summary="Step 2: read every node (confirmed keys only) and propose what to save",
        request=s.AdoptReadSerializer,
        responses={200: s.AdoptReadingSerializer},
    )
    def post(self, request):
        data = _adopt_body(s.AdoptReadSerializer, request)
        reading = actions.read_cluster(
            request.user, data["nodes"], data["credential"], **_config_path(data)
        )
        return Response(actions.describe(reading))


@extend_schema(tags=["adopt"])
class Adopt(ApiView):
    roles = {"POST": OPERATOR}
    serializer_class = s.AdoptSerializer

    @extend_schema(
        summary="Step 3: read the nodes again and save the reviewed proposal as a cluster",
        request=s.AdoptSerializer,
        responses={201: s.ClusterSerializer, 409: CONFLICT},
    )
    def post(self, request):
        data = _adopt_body(s.AdoptSerializer, request)
        cluster = actions.adopt_cluster(
            request.user,
            data["nodes"],
            data["credential"],
            data["digest"],
            data.get("edits"),
            **_config_path(data),
        )
        return Response(s.ClusterSerializer(cluster).data, status=status.HTTP_201_CREATED)


def _adopt_body(serializer_class, request):
    """The validated body; nested field errors flattened to dotted names ("nodes.0.address",
    "edits.name"), as every 400 of the API is {field: [messages]}."""
    body = serializer_class(data=request.data)
    if body.is_valid():
        return body.validated_data
    flat = {}

    def walk(prefix, detail):
        if isinstance(detail, dict):
            for key, value in detail.items():
                walk(f"{prefix}.{key}" if prefix else str(key), value)
        elif isinstance(detail, list) and any(isinstance(d, (dict, list)) for d in detail):
            for index, value in enumerate(detail):
                walk(f"{prefix}.{index}", value)
        else:
            flat[prefix or "__all__"] = [
                str(m) for m in (detail if isinstance(detail, list) else [detail])
            ]

    walk("", body.errors)
    raise exceptions.ValidationError(flat)


def _config_path(data):
    return {"config_path": data["config_path"]} if "config_path" in data else {}
