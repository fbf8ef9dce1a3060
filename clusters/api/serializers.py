"""The API's JSON shapes, as DRF serializers (drf-spectacular builds the schema from them).

Input is checked for its JSON type here (a string where a number belongs is a 400, not coerced)
and then handed to the model: validate() builds the instance and `full_clean()` decides, so the
API answers with the same rules and messages as the forms and the admin. Secrets are write-only:
no serializer here ever puts one in its output.
"""

import copy

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import MaxLengthValidator, MinLengthValidator
from django.db import models
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from clusters import health, preview
from clusters.models import (
    Cluster,
    ConfigPush,
    FailoverEvent,
    Node,
    PushStep,
    SSHCredential,
    SyncGroup,
    VirtualIP,
    VrrpInstance,
)
from clusters.services.clusters import check_admin_fields
from clusters.services.pushes import verdict as push_verdict

# The largest id a database column holds; a larger number is no id of ours (and would overflow).
MAX_ID = 2**63 - 1


def _json_type(value):
    return {
        bool: "true/false",
        int: "a number",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "an object",
        type(None): "null",
    }.get(type(value), type(value).__name__)


def _expected(wanted, value):
    return serializers.ValidationError(f"Expected {wanted}, got {_json_type(value)}.")


class StrictIntegerField(serializers.IntegerField):
    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            raise _expected("a whole number", data)
        return super().to_internal_value(data)


class StrictBooleanField(serializers.BooleanField):
    def to_internal_value(self, data):
        if not isinstance(data, bool):
            raise _expected("true or false", data)
        return data


class StrictCharField(serializers.CharField):
    """A JSON string, taken as sent (a key's final newline stays); its length is the model's
    rule (so the model's message), not DRF's."""

    def __init__(self, **kwargs):
        kwargs.setdefault("trim_whitespace", False)
        super().__init__(**kwargs)
        lengths = (MaxLengthValidator, MinLengthValidator)
        self.validators = [v for v in self.validators if not isinstance(v, lengths)]

    def to_internal_value(self, data):
        if not isinstance(data, str):
            raise _expected("a string", data)
        return super().to_internal_value(data)


class IsoDateTimeField(serializers.DateTimeField):
    """As the API has always written times: datetime.isoformat() (+00:00, not Z)."""

    def to_representation(self, value):
        return value.isoformat() if value else None


class StrictPrimaryKeyRelatedField(serializers.PrimaryKeyRelatedField):
    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            raise _expected("an id (a number)", data)
        if not 0 < data <= MAX_ID:
            self.fail("does_not_exist", pk_value=data)
        return super().to_internal_value(data)


class ModelCleanSerializer(serializers.ModelSerializer):
    """A ModelSerializer whose rules are the model's: strict JSON types, then full_clean().

    Unknown fields are refused by name; a read-only field may be sent only unchanged (so a GET
    body can be PATCHed back). Field validators, unique checks and the model's clean() all run in
    full_clean(), with their messages.
    """

    serializer_field_mapping = {
        **serializers.ModelSerializer.serializer_field_mapping,
        models.IntegerField: StrictIntegerField,
        models.BigIntegerField: StrictIntegerField,
        models.SmallIntegerField: StrictIntegerField,
        models.PositiveIntegerField: StrictIntegerField,
        models.PositiveSmallIntegerField: StrictIntegerField,
        models.PositiveBigIntegerField: StrictIntegerField,
        models.BooleanField: StrictBooleanField,
        models.CharField: StrictCharField,
        models.TextField: StrictCharField,
        models.GenericIPAddressField: StrictCharField,
        models.DateTimeField: IsoDateTimeField,
    }
    serializer_related_field = StrictPrimaryKeyRelatedField

    def build_standard_field(self, field_name, model_field):
        field_class, kwargs = super().build_standard_field(field_name, model_field)
        # The model's validators run in full_clean(); DRF's copies would answer first, with
        # other messages (and UniqueValidator with its own query).
        kwargs.pop("validators", None)
        if field_class is StrictCharField:
            for key in ("protocol", "unpack_ipv4"):
                kwargs.pop(key, None)
        return field_class, kwargs

    def get_unique_together_validators(self):
        return []  # the model's constraints, in full_clean()

    def get_unique_for_date_validators(self):
        return []

    def writable_names(self):
        return [name for name, f in self.fields.items() if not f.read_only]

    def to_internal_value(self, data):
        if not isinstance(data, dict):
            raise serializers.ValidationError({"__all__": ["Send a JSON object of fields."]})
        self.check_roles(data)
        current = self.to_representation(self.instance) if self.instance is not None else {}
        errors = {}
        for name, value in data.items():
            field = self.fields.get(name)
            if field is None:
                fields = ", ".join(self.writable_names())
                errors[name] = [f"Unknown field; the fields are {fields}."]
            elif field.read_only and (name not in current or current[name] != value):
                errors[name] = ["This field is read-only."]
        if errors:
            raise serializers.ValidationError(errors)
        return super().to_internal_value(data)

    def check_roles(self, data):
        """Refuse (403) a field the user's role may not set; nothing by default."""

    def validate(self, attrs):
        if self.instance is not None:
            instance = copy.copy(self.instance)
        else:
            instance = self.Meta.model(**self.context.get("parent", {}))
        for name, value in attrs.items():
            setattr(instance, name, value)
        try:
            instance.full_clean()
        except DjangoValidationError as e:
            raise serializers.ValidationError(e.message_dict) from None
        return attrs


class CredentialSerializer(ModelCleanSerializer):
    """An SSH credential: its name and user name; the key and passphrase are write-only."""

    class Meta:
        model = SSHCredential
        fields = ["id", "name", "username", "created", "updated", "private_key", "passphrase"]
        extra_kwargs = {
            "private_key": {
                "write_only": True,
                "help_text": "Write-only: stored encrypted, never returned. An OpenSSH or PEM "
                "private key.",
            },
            "passphrase": {"write_only": True, "help_text": "Write-only: stored encrypted."},
        }


CLUSTER_FIELDS = [
    "name",
    "network",
    "virtual_router_id",
    "interface",
    "advert_int",
    "unicast",
    "preempt",
    "preempt_delay",
    "check_type",
    "check_target",
    "check_script",
    "check_interval",
    "check_weight",
    "check_fall",
    "check_rise",
    "config_path",
    "reload_command",
    "credential",
]


class ClusterSerializer(ModelCleanSerializer):
    """A keepalived VRRP cluster, by its model field names; auth_pass is write-only."""

    auth_pass_set = serializers.SerializerMethodField(
        help_text="Whether an auth_pass is stored (the value is never returned)."
    )

    class Meta:
        model = Cluster
        fields = ["id", *CLUSTER_FIELDS, "auth_pass_set", "created", "updated", "auth_pass"]
        extra_kwargs = {
            "auth_pass": {
                "write_only": True,
                "help_text": "Write-only: stored encrypted, never returned. In a PATCH, an "
                "empty string removes it; leave it out to keep it.",
            },
            "reload_command": {"help_text": "Only an admin may set it (403 otherwise)."},
        }

    @extend_schema_field(OpenApiTypes.BOOL)
    def get_auth_pass_set(self, cluster):
        return bool(cluster.auth_pass)

    def check_roles(self, data):
        """403 before any field error for what only an admin may set (the services' rule)."""
        request = self.context.get("request")
        if request is not None:
            check_admin_fields(request.user, self.instance or Cluster(), data)


class NodeSerializer(ModelCleanSerializer):
    """A node of a cluster."""

    class Meta:
        model = Node
        fields = [
            "id",
            "name",
            "address",
            "ssh_port",
            "priority",
            "interface",
            "credential",
            "maintenance",
            "host_key_fingerprint",
            "cluster",
            "offered_host_key_fingerprint",
            "created",
            "updated",
        ]
        read_only_fields = ["cluster", "offered_host_key_fingerprint"]
        extra_kwargs = {
            "host_key_fingerprint": {
                "help_text": "SHA256:... as ssh-keygen -l prints it. Once pinned it changes "
                "only through POST /api/v1/nodes/{node_id}/repin/.",
            },
            "maintenance": {
                "help_text": "Changing it pushes the cluster (the node gets the lowest "
                "priority, so the VIPs move off it): 409 while another push is active.",
            },
        }

    def validate_host_key_fingerprint(self, value):
        pinned = self.instance.host_key_fingerprint if self.instance is not None else ""
        if pinned and value != pinned:
            raise serializers.ValidationError(
                "The host key is pinned; a different one is accepted only with "
                f"POST /api/v1/nodes/{self.instance.pk}/repin/, after the node has offered it."
            )
        return value


class VirtualIPSerializer(ModelCleanSerializer):
    """A virtual IP of a cluster (address/prefix), in one of its VRRP instances."""

    class Meta:
        model = VirtualIP
        fields = ["id", "address", "label", "instance", "cluster", "host_address", "created"]
        read_only_fields = ["cluster", "host_address"]
        extra_kwargs = {
            "instance": {
                "help_text": "The cluster's further instance it belongs to (GET "
                "/api/v1/clusters/{cluster_id}/instances/); null: the main instance.",
            },
        }


INSTANCE_FIELDS = [
    "name",
    "virtual_router_id",
    "interface",
    "network",
    "advert_int",
    "unicast",
    "preempt",
    "preempt_delay",
    "track_check",
    "sync_group",
]


class VrrpInstanceSerializer(ModelCleanSerializer):
    """A further VRRP instance of a cluster (the main one is the cluster's own fields);
    auth_pass is write-only."""

    auth_pass_set = serializers.SerializerMethodField(
        help_text="Whether an auth_pass is stored (the value is never returned)."
    )
    keepalived_name = serializers.SerializerMethodField(
        help_text="The vrrp_instance name in the nodes' keepalived.conf."
    )
    priorities = serializers.SerializerMethodField(
        help_text="Each node's priority in this instance, highest first; change one with "
        "POST /api/v1/instances/{instance_id}/priorities/."
    )

    class Meta:
        model = VrrpInstance
        fields = [
            "id",
            *INSTANCE_FIELDS,
            "cluster",
            "keepalived_name",
            "auth_pass_set",
            "priorities",
            "created",
            "auth_pass",
        ]
        read_only_fields = ["cluster"]
        extra_kwargs = {
            "auth_pass": {
                "write_only": True,
                "help_text": "Write-only: stored encrypted, never returned. In a PATCH, an "
                "empty string removes it; leave it out to keep it.",
            },
        }

    @extend_schema_field(OpenApiTypes.BOOL)
    def get_auth_pass_set(self, instance):
        return bool(instance.auth_pass)

    @extend_schema_field(OpenApiTypes.STR)
    def get_keepalived_name(self, instance):
        return instance.keepalived_name

    @extend_schema_field(
        {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"node": {"type": "integer"}, "priority": {"type": "integer"}},
            },
        }
    )
    def get_priorities(self, instance):
        return [
            {"node": node, "priority": priority}
            for node, priority in instance.node_priorities.values_list("node", "priority")
        ]


class NodePrioritySerializer(serializers.Serializer):
    """A node's priority in one instance (created or changed)."""

    node = StrictPrimaryKeyRelatedField(queryset=Node.objects.all(), help_text="The node's id.")
    priority = StrictIntegerField(help_text="1-254, unique within the instance.")


class SyncGroupSerializer(ModelCleanSerializer):
    """A vrrp_sync_group: its member instances change state together."""

    members = serializers.SerializerMethodField(
        help_text="Ids of the further instances in the group (set through each instance's "
        "sync_group field)."
    )

    class Meta:
        model = SyncGroup
        fields = ["id", "name", "includes_main", "cluster", "members"]
        read_only_fields = ["cluster"]

    @extend_schema_field({"type": "array", "items": {"type": "integer"}})
    def get_members(self, group):
        return list(group.instances.order_by("id").values_list("pk", flat=True))


class RepinSerializer(serializers.Serializer):
    """Optionally, the offered host key the caller compared."""

    fingerprint = StrictCharField(
        required=False,
        help_text="Optional: the offered key you compared; 409 if the node offers another by now.",
    )

    def to_internal_value(self, data):
        if not isinstance(data, dict):
            raise serializers.ValidationError({"__all__": ['Send {} or {"fingerprint": "..."}.']})
        unknown = set(data) - set(self.fields)
        if unknown:
            raise serializers.ValidationError(
                {name: ["Unknown field; the only field is fingerprint."] for name in unknown}
            )
        return super().to_internal_value(data)


class EmptySerializer(serializers.Serializer):
    """For actions that take no fields: an empty body or {}."""

    def to_internal_value(self, data):
        if data in (None, {}, ""):
            return {}
        if not isinstance(data, dict):
            raise serializers.ValidationError({"__all__": ["Send an empty body or {}."]})
        raise serializers.ValidationError(
            {name: ["Unknown field; this action takes none."] for name in data}
        )


class PushRequestSerializer(serializers.Serializer):
    """The body of a push or a resume. Both fields are optional: an empty body or {} starts it
    as before."""

    confirm = StrictCharField(
        required=False,
        help_text="The cluster's name. Optional; when sent it must match, so a script that "
        "got the id wrong is stopped (400 naming `confirm`).",
    )
    skip = serializers.ListField(
        child=StrictCharField(),
        required=False,
        max_length=1000,
        help_text="Names of nodes to leave untouched and never connect to (those that cannot "
        "be reached: a push is refused with 409 while one it must change is unreachable). "
        "Recorded on the push and its audit entry.",
    )

    def to_internal_value(self, data):
        if data in (None, {}, ""):
            return {}
        if not isinstance(data, dict):
            raise serializers.ValidationError({"__all__": ["Send a JSON object, or nothing."]})
        unknown = set(data) - set(self.fields)
        if unknown:
            raise serializers.ValidationError(
                {name: ["Unknown field; the fields are confirm and skip."] for name in unknown}
            )
        return super().to_internal_value(data)


# The prediction of an action (clusters.impact.Impact.as_dict): these describe its shape.


class MoveSerializer(serializers.Serializer):
    """One expected change of who holds a VIP."""

    vip = serializers.CharField()
    instance = serializers.CharField()
    phase = serializers.IntegerField(help_text="Index into the prediction's phases.")
    cause = serializers.CharField(help_text="The node whose change causes it.")
    cause_how = serializers.CharField(help_text="reload, stop, start or install.")
    before = serializers.ListField(child=serializers.CharField())
    after = serializers.ListField(child=serializers.CharField())
    kind = serializers.CharField(help_text="move, up, down, split or merge.")
    within = serializers.FloatField(
        allow_null=True, help_text="Seconds after the cause until it happens (an estimate)."
    )
    outage = serializers.FloatField(
        allow_null=True, help_text="Seconds no node answers for the VIP (0: none)."
    )
    reason = serializers.CharField(allow_blank=True)
    text = serializers.CharField(help_text="The same, in a sentence.")


class VipImpactSerializer(serializers.Serializer):
    vip = serializers.CharField()
    instance = serializers.CharField()
    before = serializers.ListField(child=serializers.CharField())
    after = serializers.ListField(child=serializers.CharField())
    moves = MoveSerializer(many=True)


class NodeImpactSerializer(serializers.Serializer):
    node = serializers.CharField()
    what = serializers.CharField(
        help_text="changes, unchanged, not read, skipped, left alone, stopped, deleted or "
        "not touched."
    )
    details = serializers.ListField(child=serializers.CharField())


class ImpactSerializer(serializers.Serializer):
    """What an action will do: which nodes change, where each VIP goes and how fast."""

    action = serializers.CharField()
    cluster = serializers.CharField()
    when = serializers.CharField(help_text="now, or at the next push (a deletion).")
    phases = serializers.ListField(child=serializers.CharField())
    nodes = NodeImpactSerializer(many=True)
    vips = VipImpactSerializer(many=True)
    moves = serializers.ListField(child=serializers.CharField(), help_text="Every move, said.")
    warnings = serializers.ListField(child=serializers.CharField())
    notes = serializers.ListField(child=serializers.CharField())
    summary = serializers.CharField()
    timing = serializers.CharField(help_text="The rule the estimates follow.")


class VerdictSerializer(serializers.Serializer):
    """Whether a push's prediction held."""

    status = serializers.CharField(help_text="held, not held, pending or not judged.")
    reasons = serializers.ListField(child=serializers.CharField())
    expected_events = serializers.ListField(child=serializers.IntegerField())
    unexpected_events = serializers.ListField(child=serializers.IntegerField())


# --- Operations ------------------------------------------------------------------------------


# One scrubber for the panel and the API.
scrub = preview.scrub
cluster_secrets = preview.cluster_secrets


class ScrubbedField(serializers.CharField):
    """Text from a node or a push log, with the cluster's secrets (context["secrets"]) masked."""

    def __init__(self, **kwargs):
        super().__init__(read_only=True, **kwargs)

    def to_representation(self, value):
        return scrub(value, self.context.get("secrets", ()))


class PushStepSerializer(serializers.ModelSerializer):
    """One node's step of a push."""

    node = serializers.CharField(source="node_name", read_only=True)
    node_id = serializers.IntegerField(read_only=True, allow_null=True)
    detail = ScrubbedField()
    output = ScrubbedField(help_text="The node's output (keepalived -t).")
    started = IsoDateTimeField(read_only=True, allow_null=True)
    finished = IsoDateTimeField(read_only=True, allow_null=True)

    class Meta:
        model = PushStep
        fields = [
            "node",
            "node_id",
            "position",
            "state",
            "detail",
            "exit_code",
            "output",
            "started",
            "finished",
        ]
        read_only_fields = fields


class PushSummarySerializer(serializers.ModelSerializer):
    """A push in a list: no steps, no log."""

    cluster = serializers.IntegerField(source="cluster_id", read_only=True)
    created = IsoDateTimeField(read_only=True)
    finished = IsoDateTimeField(read_only=True, allow_null=True)

    class Meta:
        model = ConfigPush
        fields = ["id", "cluster", "kind", "state", "created", "finished"]
        read_only_fields = fields


class PushSerializer(PushSummarySerializer):
    """A push and its steps. Node output is kept (keepalived -t's messages), secrets scrubbed."""

    requested_by = serializers.SerializerMethodField()
    started = IsoDateTimeField(read_only=True, allow_null=True)
    detail = ScrubbedField()
    steps = PushStepSerializer(many=True, read_only=True)
    skipped = serializers.SerializerMethodField()
    prediction = serializers.SerializerMethodField()
    verdict = serializers.SerializerMethodField()

    class Meta(PushSummarySerializer.Meta):
        fields = [
            "id",
            "cluster",
            "kind",
            "state",
            "requested_by",
            "created",
            "started",
            "finished",
            "detail",
            "steps",
            "skipped",
            "prediction",
            "verdict",
        ]
        read_only_fields = fields

    @extend_schema_field({"type": "string", "nullable": True})
    def get_requested_by(self, push):
        return push.requested_by.get_username() if push.requested_by else None

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_skipped(self, push):
        return push.skipped_names

    @extend_schema_field(ImpactSerializer(allow_null=True))
    def get_prediction(self, push):
        """Made when the push planned, before it touched any node; null until then."""
        return push.prediction or None

    @extend_schema_field(VerdictSerializer())
    def get_verdict(self, push):
        return push_verdict(push).as_dict()


class FailoverSerializer(serializers.ModelSerializer):
    """A failover, split brain or other VIP event."""

    at = IsoDateTimeField(read_only=True)
    vip = serializers.CharField(source="vip_address", read_only=True)
    vip_id = serializers.IntegerField(read_only=True, allow_null=True)

    class Meta:
        model = FailoverEvent
        fields = [
            "id",
            "at",
            "vip",
            "vip_id",
            "from_node",
            "to_node",
            "kind",
            "detected_by",
            "detail",
        ]
        read_only_fields = fields


# Preview and status are computed, not stored: these serializers describe their shape (for the
# schema); the views return the dicts as built.


class NodePreviewSerializer(serializers.Serializer):
    """What a push would change on one node."""

    node = serializers.CharField()
    node_id = serializers.IntegerField()
    changed = serializers.BooleanField(
        allow_null=True, help_text="null when the live file could not be read (see error)."
    )
    diff = serializers.CharField(help_text="Unified diff, live -> rendered; auth_pass masked.")
    error = serializers.CharField(allow_blank=True)
    maintenance = serializers.BooleanField()
    rendered = serializers.CharField(
        allow_blank=True,
        help_text="When the live file could not be read: the whole file the push would send.",
    )
    skipped = serializers.BooleanField(help_text="Left out (skip): not connected to.")


class PreviewSerializer(serializers.Serializer):
    """What a push would change, per node, and what it would do to the VIPs."""

    cluster = serializers.IntegerField()
    nodes = NodePreviewSerializer(many=True)
    impact = ImpactSerializer()
    unreachable = serializers.ListField(
        child=serializers.CharField(),
        help_text="Nodes that could not be read: a push is refused until they are skipped.",
    )
    blocked = serializers.CharField(
        allow_blank=True, help_text="Why a push would be refused now ('' when it would start)."
    )


class VipStatusSerializer(serializers.Serializer):
    """Who holds a VIP, as last seen."""

    id = serializers.IntegerField()
    address = serializers.CharField()
    holder = serializers.CharField(
        allow_null=True,
        help_text="The one node holding it; null in split brain or with no holder.",
    )
    holders = serializers.ListField(child=serializers.CharField())
    since = serializers.DateTimeField(allow_null=True)
    split_brain = serializers.BooleanField()
    no_holder = serializers.BooleanField()
    pending_push = serializers.BooleanField(
        help_text="Saved in vipanel but never pushed: nobody is expected to hold it yet, and it "
        "is never 'no holder'."
    )


class NodeStatusSerializer(serializers.Serializer):
    """A node as the last sweep saw it."""

    id = serializers.IntegerField()
    name = serializers.CharField()
    maintenance = serializers.BooleanField()
    checked_at = serializers.DateTimeField(allow_null=True)
    reachable = serializers.BooleanField(allow_null=True, help_text="null: never probed.")
    keepalived_running = serializers.BooleanField(allow_null=True)
    vrrp_state = serializers.CharField(help_text="MASTER, BACKUP, FAULT, STOPPED or UNKNOWN.")
    holds = serializers.ListField(child=serializers.CharField())
    drift = serializers.BooleanField(
        allow_null=True,
        help_text="The live config is not what vipanel last pushed there: it was edited on the "
        "node. null: nothing to compare with (never pushed, or not read).",
    )
    error = serializers.CharField(allow_blank=True)
    host_key_problem = serializers.BooleanField()
    pending_push = serializers.BooleanField(
        help_text="A change saved in vipanel is not pushed to this node yet (or it never was)."
    )
    pushed_at = serializers.DateTimeField(
        allow_null=True, help_text="When a push last wrote this node's config or found it as is."
    )


class StatusSerializer(serializers.Serializer):
    """What the last sweep saw of a cluster."""

    cluster = serializers.IntegerField()
    name = serializers.CharField()
    checked_at = serializers.DateTimeField(allow_null=True)
    split_brain = serializers.BooleanField()
    pending_push = serializers.BooleanField(
        help_text="Something saved in vipanel is not pushed yet (no problem: push to apply it)."
    )
    vips = VipStatusSerializer(many=True)
    nodes = NodeStatusSerializer(many=True)


class RefreshSerializer(StatusSerializer):
    """A fresh status, with the events the probe found."""

    events = FailoverSerializer(many=True, help_text="The events this probe found.")


def _iso(value):
    return value.isoformat() if value else None


def status_dict(cluster):
    """What the last sweep (or notify report) saw of a cluster: the API's one statement of a
    cluster's status, built from clusters.health (the rule the panel and the metrics use).
    A node never probed has reachable null."""
    h = health.cluster_health(cluster)
    node_rows = []
    for nh in h.nodes:
        node, state = nh.node, nh.state
        node_rows.append(
            {
                "id": node.pk,
                "name": node.name,
                "maintenance": node.maintenance,
                "checked_at": _iso(state.checked_at) if state else None,
                "reachable": state.reachable if state else None,
                "keepalived_running": state.keepalived_running if state else None,
                "vrrp_state": state.vrrp_state if state else "UNKNOWN",
                "holds": list(state.holds) if state else [],
                "drift": state.drift if state else None,
                "error": state.error if state else "",
                "host_key_problem": bool(
                    health.host_key_problem(
                        node.host_key_fingerprint, node.offered_host_key_fingerprint, state
                    )
                ),
                "pending_push": nh.pending,
                "pushed_at": _iso(node.pushed_at),
            }
        )
    vip_rows = []
    for vh in h.vips:
        state = vh.state
        vip_rows.append(
            {
                "id": vh.vip.pk,
                "address": vh.vip.address,
                "holder": vh.text if vh.status == "ok" else None,
                "holders": vh.holders,
                "since": _iso(state.since) if state else None,
                "split_brain": "split brain" in vh.problems,
                "no_holder": "no holder" in vh.problems,
                "pending_push": vh.pending,
            }
        )
    checked = [nh.state.checked_at for nh in h.nodes if nh.state is not None]
    checked += [vh.state.checked_at for vh in h.vips if vh.state is not None]
    return {
        "cluster": cluster.pk,
        "name": cluster.name,
        "checked_at": _iso(max(checked)) if checked else None,
        "split_brain": any(row["split_brain"] for row in vip_rows),
        "pending_push": bool(h.pending),
        "vips": vip_rows,
        "nodes": node_rows,
    }


# --- Adopting a running cluster (clusters.services.adopt) ------------------------------------


class StrictSerializer(serializers.Serializer):
    """A plain serializer that refuses anything but a JSON object of its own fields."""

    def to_internal_value(self, data):
        if not isinstance(data, dict):
            raise serializers.ValidationError({"__all__": ["Send a JSON object of fields."]})
        unknown = set(data) - set(self.fields)
        if unknown:
            names = ", ".join(self.fields)
            raise serializers.ValidationError(
                {name: [f"Unknown field; the fields are {names}."] for name in unknown}
            )
        return super().to_internal_value(data)


class AdoptNodeSerializer(StrictSerializer):
    address = StrictCharField(help_text="The node's own IP address (SSH and VRRP).")
    ssh_port = StrictIntegerField(required=False, help_text="Default 22.")
    host_key_fingerprint = StrictCharField(
        required=False,
        allow_blank=True,
        help_text="The SHA256 fingerprint you compared with the node's own (`ssh-keygen -lf`). "
        "Required to read; compared with the offered key when scanning.",
    )


class AdoptKeysSerializer(StrictSerializer):
    nodes = AdoptNodeSerializer(many=True)
    credential = StrictPrimaryKeyRelatedField(
        queryset=SSHCredential.objects.all(), help_text="The SSH credential for every node."
    )


class AdoptReadSerializer(AdoptKeysSerializer):
    config_path = StrictCharField(
        required=False, help_text="keepalived's config on the nodes (admin only to change)."
    )


class AdoptNodeEditSerializer(StrictSerializer):
    name = StrictCharField(required=False)
    priority = StrictIntegerField(required=False)


class AdoptEditsSerializer(StrictSerializer):
    name = StrictCharField(required=False)
    network = StrictCharField(required=False)
    reload_command = StrictCharField(required=False, help_text="Admin only.")
    check_type = StrictCharField(required=False, allow_blank=True)
    check_target = StrictCharField(required=False, allow_blank=True)
    check_script = StrictCharField(
        required=False, allow_blank=True, help_text="Admin only (runs as root on every node)."
    )
    check_interval = StrictIntegerField(required=False)
    check_weight = StrictIntegerField(required=False)
    check_fall = StrictIntegerField(required=False)
    check_rise = StrictIntegerField(required=False)
    nodes = serializers.DictField(
        child=AdoptNodeEditSerializer(),
        required=False,
        help_text="By node key (the address, or address:port): name and main priority.",
    )


class AdoptSerializer(AdoptReadSerializer):
    digest = StrictCharField(help_text="The digest of the reading you reviewed.")
    edits = AdoptEditsSerializer(required=False)


class AdoptKeySerializer(serializers.Serializer):
    """The key one node offers."""

    key = serializers.CharField()
    address = serializers.CharField()
    ssh_port = serializers.IntegerField()
    offered = serializers.CharField(allow_blank=True, help_text="SHA256 fingerprint offered.")
    given = serializers.CharField(allow_blank=True)
    matches = serializers.BooleanField(
        allow_null=True, help_text="null when no fingerprint was given: compare it yourself."
    )
    error = serializers.CharField(allow_blank=True)


class AdoptKeysAnswerSerializer(serializers.Serializer):
    nodes = AdoptKeySerializer(many=True)


class AdoptReadingSerializer(serializers.Serializer):
    """What the nodes run now and what adopting will save (see clusters.services.adopt)."""

    digest = serializers.CharField(help_text="Send it back with the adopt request.")
    config_path = serializers.CharField()
    errors = serializers.DictField(child=serializers.CharField(), help_text="By node key.")
    problems = serializers.DictField(
        child=serializers.CharField(), help_text="What stops the proposal being saved."
    )
    split_brain = serializers.ListField(child=serializers.DictField())
    cluster = serializers.DictField(allow_null=True)
    nodes = serializers.ListField(child=serializers.DictField())
    instances = serializers.ListField(child=serializers.DictField())
    sync_groups = serializers.ListField(child=serializers.DictField())
    findings = serializers.ListField(child=serializers.DictField())
