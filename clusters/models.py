"""Clusters, their nodes and virtual IPs, and the rules that keep a cluster pushable.

One rule set: ranges are field validators, cross-field and cross-row rules live in clean(), and
database constraints back up the ones that must hold even against a race. Forms, admin and the
API all call full_clean(), so they all get the same errors, each keyed by the field to fix.
"""

import hashlib
import ipaddress
import secrets
from dataclasses import dataclass

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from clusters import constants, validators
from clusters.crypto import EncryptedTextField, new_ed25519_key


def _range(lo, hi):
    return [MinValueValidator(lo), MaxValueValidator(hi)]


def _checked_int(value, lo, hi):
    """value if it is a whole number within lo..hi, else None.

    full_clean() runs clean() even when a field failed, with the raw value still on the instance
    ('abc', 10**30): cross-row checks must skip it, not query with it.
    """
    if isinstance(value, int) and not isinstance(value, bool) and lo <= value <= hi:
        return value
    return None


def _parsed(parse, value):
    """parse(value), or None when the field validator has already reported the value."""
    try:
        return parse(value)
    except (ValidationError, TypeError):
        return None


def _parsed_address(value):
    try:
        return validators.parse_address(value)
    except ValueError:
        return None


def _nearest_free(wanted, used, lo, hi):
    """The free value closest to wanted (below first: a new node is usually a backup)."""
    for distance in range(1, hi - lo + 1):
        for candidate in (wanted - distance, wanted + distance):
            if lo <= candidate <= hi and candidate not in used:
                return candidate
    return None


@dataclass(frozen=True)
class _VridUse:
    """One VRRP instance's VRID on its segment: what a new VRID must not clash with."""

    vrid: int
    network: str
    what: str  # "cluster 'web'" or "instance 'B' of cluster 'web'"

    def message(self, vrid, free):
        advice = (
            f"Pick another VRID, e.g. {free}."
            if free
            else "Every VRID is taken on this segment: split the segment or retire an instance."
        )
        return (
            f"VRID {vrid} is already used by {self.what} on {self.network}, the same network "
            f"segment; their adverts would collide. {advice}"
        )


def vrids_on_segment(net, exclude=None):
    """Every VRRP instance whose segment overlaps net, as _VridUse, except `exclude`.

    A cluster's main instance is the cluster row itself (its network and VRID); its further
    instances are VrrpInstance rows, on the cluster's network unless they name their own.
    keepalived only catches a duplicate VRID inside one host's file, so this is the one place
    that sees every cluster's instances at once.
    """
    for cluster in Cluster.objects.order_by("name"):
        if not (isinstance(exclude, Cluster) and exclude.pk == cluster.pk):
            other = _parsed(validators.parse_network, cluster.network)
            if other is not None and other.version == net.version and other.overlaps(net):
                yield _VridUse(
                    cluster.virtual_router_id, cluster.network, f"cluster '{cluster.name}'"
                )
    for inst in VrrpInstance.objects.select_related("cluster").order_by("cluster__name", "name"):
        if isinstance(exclude, VrrpInstance) and exclude.pk == inst.pk:
            continue
        other = _parsed(validators.parse_network, inst.segment)
        if other is not None and other.version == net.version and other.overlaps(net):
            yield _VridUse(
                inst.virtual_router_id,
                inst.segment,
                f"instance '{inst.name}' of cluster '{inst.cluster.name}'",
            )


def free_vrid(net, exclude=None):
    used = {u.vrid for u in vrids_on_segment(net, exclude)}
    return next(
        (v for v in range(constants.VRID_MIN, constants.VRID_MAX + 1) if v not in used), None
    )


@dataclass(frozen=True)
class InstanceSummary:
    """One VRRP instance of a cluster (Cluster.vrrp_instances): its keepalived name, the
    VrrpInstance row (None for the main instance), preemption, {node_id: priority}, VIPs."""

    name: str
    instance: object
    preempt: bool
    priorities: dict
    vips: list


class NodeAddressField(models.GenericIPAddressField):
    """An IP address field that refuses what Django's would quietly rewrite.

    GenericIPAddressField strips surrounding whitespace and drops an IPv6 zone id ('%eth0')
    without a word; here either is an error, so a value is stored as given or not at all.
    """

    def to_python(self, value):
        if isinstance(value, str) and value and not validators.ADDRESS_CHARS.fullmatch(value):
            raise ValidationError(
                "Enter the address alone, for example 192.0.2.11 or 2001:db8::11: no spaces, "
                "prefix length or zone id ('%eth0').",
                code="invalid",
            )
        return super().to_python(value)

    def formfield(self, **kwargs):
        # Django's form field would strip the zone id before the model could refuse it.
        return models.Field.formfield(
            self, **{"form_class": forms.CharField, "max_length": 39, **kwargs}
        )


class VIPHostField(models.CharField):
    """The VIP's address without its prefix length, computed on every insert and save.

    The database can then refuse one IP written twice with different prefixes
    (198.51.100.10/24 and 198.51.100.10/25), which a unique constraint on the text cannot.
    """

    def pre_save(self, model_instance, add):
        value = str(ipaddress.ip_interface(model_instance.address).ip)
        setattr(model_instance, self.attname, value)
        return value


class CleanCheckedConstraintsMixin:
    """Constraints whose rule clean() already checks, with a message keyed by the field to fix.

    Django would report them a second time under "__all__" with a generic message; they stay in
    Meta.constraints as the database's guard against races.
    """

    constraints_checked_in_clean = ()

    def get_constraints(self):
        return [
            (model, [c for c in cs if c.name not in self.constraints_checked_in_clean])
            for model, cs in super().get_constraints()
        ]


class SkipFailedFieldsMixin:
    """Lets clean() know which fields clean_fields() refused.

    full_clean() runs clean() even then, with the refused raw value still on the instance; a
    cross-row check must not query with it (PostgreSQL refuses a NUL byte in a parameter with a
    DataError, for one) nor report a second error about it.
    """

    def clean_fields(self, exclude=None):
        self._failed_fields = set()
        try:
            super().clean_fields(exclude=exclude)
        except ValidationError as e:
            self._failed_fields = set(e.message_dict)
            raise

    def field_ok(self, name):
        return name not in getattr(self, "_failed_fields", ())


class SSHCredential(models.Model):
    name = models.CharField(max_length=100, unique=True, validators=[validators.validate_one_line])
    username = models.CharField(
        max_length=32, default="root", validators=[validators.username_validator]
    )
    # Write-only: forms, admin and API accept these but never render them back.
    private_key = EncryptedTextField(
        help_text="OpenSSH or PEM private key (ed25519, ECDSA or RSA). Stored encrypted."
    )
    passphrase = EncryptedTextField(blank=True, help_text="Leave empty if the key has none.")
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name = "SSH credential"

    def __str__(self):
        return self.name

    def clean(self):
        key = (self.private_key or "").strip()
        if key and not (key.startswith("-----BEGIN ") and "PRIVATE KEY-----" in key):
            raise ValidationError(
                {
                    "private_key": "Paste the whole private key, from its '-----BEGIN ... "
                    "PRIVATE KEY-----' line to its END line."
                }
            )


def _new_notify_secret():
    return secrets.token_urlsafe(32)


def _new_notify_key():
    return new_ed25519_key()


def vrrp_instance_constraints():
    """The database's rules for a VRRP instance's own fields, the same for a cluster's main
    instance (Cluster) and its further ones (VrrpInstance); named per model by %(class)s."""
    return [
        models.CheckConstraint(
            condition=models.Q(virtual_router_id__gte=constants.VRID_MIN)
            & models.Q(virtual_router_id__lte=constants.VRID_MAX),
            name="%(app_label)s_%(class)s_vrid_range",
        ),
        models.CheckConstraint(
            condition=models.Q(advert_int__gte=constants.ADVERT_INT_MIN)
            & models.Q(advert_int__lte=constants.ADVERT_INT_MAX),
            name="%(app_label)s_%(class)s_advert_int_range",
        ),
        models.CheckConstraint(
            condition=models.Q(preempt=True) | models.Q(preempt_delay=0),
            name="%(app_label)s_%(class)s_preempt_delay_needs_preempt",
        ),
    ]


class Cluster(SkipFailedFieldsMixin, CleanCheckedConstraintsMixin, models.Model):
    name = models.CharField(
        max_length=63,
        unique=True,
        validators=[validators.name_validator],
        error_messages={"unique": "Another cluster has this name; pick a different one."},
    )
    interface = models.CharField(
        max_length=constants.INTERFACE_NAME_MAX,
        default="eth0",
        validators=[validators.validate_interface],
        help_text="Interface VRRP runs on; a node may override it.",
    )
    network = models.CharField(
        max_length=43,
        validators=[validators.validate_network],
        help_text="The L2 segment the nodes share, in CIDR form (e.g. 192.0.2.0/24). "
        "VRIDs must be unique per segment.",
    )
    virtual_router_id = models.PositiveSmallIntegerField(
        "VRID", validators=_range(constants.VRID_MIN, constants.VRID_MAX)
    )
    advert_int = models.PositiveSmallIntegerField(
        default=1,
        validators=_range(constants.ADVERT_INT_MIN, constants.ADVERT_INT_MAX),
        help_text="Seconds between VRRP adverts; failover takes about 3 x this.",
    )
    auth_pass = EncryptedTextField(
        blank=True,
        validators=[validators.validate_auth_pass],
        help_text="Optional VRRP password, at most 8 characters. Stored encrypted.",
    )
    unicast = models.BooleanField(
        default=False, help_text="Send adverts to the other nodes' addresses instead of multicast."
    )
    preempt = models.BooleanField(
        default=True, help_text="A higher-priority node takes the VIPs back when it returns."
    )
    preempt_delay = models.PositiveSmallIntegerField(
        default=0,
        validators=[MaxValueValidator(constants.PREEMPT_DELAY_MAX)],
        help_text="Seconds to wait after start-up before taking the VIPs back.",
    )

    class CheckType(models.TextChoices):
        NONE = "", "No health check"
        PROCESS = "process", "Process running (pgrep -x NAME)"
        TCP = "tcp", "TCP port open on the node"
        HTTP = "http", "HTTP(S) URL answers"
        FILE = "file", "File exists"
        COMMAND = "command", "Command (admin only)"

    # The typed checks' one parameter each; clusters/render.py turns it into a fixed command.
    CHECK_TARGET_VALIDATORS = {
        CheckType.PROCESS: validators.validate_check_process,
        CheckType.TCP: validators.validate_check_port,
        CheckType.HTTP: validators.validate_check_url,
        CheckType.FILE: validators.validate_check_file,
    }

    check_type = models.CharField(
        max_length=10,
        choices=CheckType.choices,
        default=CheckType.NONE,
        blank=True,
        help_text="Health check run on every node. A free-form command is set by an admin only.",
    )
    check_target = models.CharField(
        max_length=200,
        blank=True,
        help_text="What the check looks at: a process name (haproxy), a TCP port (8404), a URL "
        "(http://127.0.0.1:8404/health) or a file (/run/haproxy.pid).",
    )
    check_script = models.CharField(
        max_length=255,
        blank=True,
        validators=[validators.validate_check_script],
        help_text="With check type 'command' (admin only): an executable and its arguments, "
        "run as root on every node, e.g. /usr/local/bin/check-haproxy.",
    )
    check_interval = models.PositiveSmallIntegerField(
        default=2, validators=_range(constants.CHECK_INTERVAL_MIN, constants.CHECK_INTERVAL_MAX)
    )
    check_weight = models.SmallIntegerField(
        default=0,
        validators=_range(constants.CHECK_WEIGHT_MIN, constants.CHECK_WEIGHT_MAX),
        help_text="0: a failing check puts the node in FAULT. Otherwise the priority change, "
        "which must exceed the spread of the nodes' priorities.",
    )
    check_fall = models.PositiveSmallIntegerField(
        default=2, validators=_range(constants.CHECK_FALL_RISE_MIN, constants.CHECK_FALL_RISE_MAX)
    )
    check_rise = models.PositiveSmallIntegerField(
        default=2, validators=_range(constants.CHECK_FALL_RISE_MIN, constants.CHECK_FALL_RISE_MAX)
    )
    config_path = models.CharField(
        max_length=255,
        default=constants.DEFAULT_CONFIG_PATH,
        validators=[validators.validate_config_path],
        help_text="keepalived's config file on the nodes (admin only): a .conf file in "
        "/etc/keepalived/ or another directory of VIPANEL_CONFIG_DIRS.",
    )
    reload_command = models.CharField(
        max_length=255,
        default=constants.DEFAULT_RELOAD_COMMAND,
        validators=[validators.validate_reload_command],
        help_text="Shell command that reloads keepalived on a node.",
    )
    credential = models.ForeignKey(
        SSHCredential,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="clusters",
        help_text="Default SSH credential for the nodes.",
    )
    # Signs keepalived's notify reports to vipanel (HMAC); never shown.
    notify_secret = EncryptedTextField(default=_new_notify_secret, editable=False)
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    constraints_checked_in_clean = ("clusters_cluster_unique_vrid_per_network",)

    class Meta:
        ordering = ["name"]
        constraints = [
            # Same text only; clean() also catches overlapping spellings of one segment.
            models.UniqueConstraint(
                fields=["network", "virtual_router_id"],
                name="%(app_label)s_%(class)s_unique_vrid_per_network",
            ),
            *vrrp_instance_constraints(),
        ]

    def __str__(self):
        return self.name

    @property
    def ip_network(self):
        return ipaddress.ip_network(self.network, strict=False)

    def clean(self):
        errors = {}
        net = _parsed(validators.parse_network, self.network) if self.field_ok("network") else None
        if net is not None:
            # One spelling per segment (192.0.2.7/24 and 192.0.2.0/255.255.255.0 are both
            # 192.0.2.0/24), so the unique constraint compares like with like.
            self.network = str(net)
            vrid = _checked_int(self.virtual_router_id, constants.VRID_MIN, constants.VRID_MAX)
            if vrid is not None:
                self._check_vrid(errors, net, vrid)
            if self.pk and "network" not in errors:
                self._check_instances_on(errors, net)
        if self.preempt_delay and not self.preempt:
            errors["preempt_delay"] = (
                "A preempt delay only applies when preemption is on: set it to 0 or turn "
                "preempt on."
            )
        self._check_health_check(errors)
        if self.pk:
            self._check_against_nodes(errors, net)
        if errors:
            raise ValidationError(errors)

    def _check_health_check(self, errors):
        """One check per cluster: a typed one from its parameter, or an admin's command."""
        kind = self.check_type
        if kind == self.CheckType.NONE and self.check_script:
            # A client that only knows check_script (older API callers) means a command.
            kind = self.check_type = self.CheckType.COMMAND
        if kind not in self.CheckType.values:
            return  # the field's choices have reported it
        if kind != self.CheckType.COMMAND:
            # A typed check replaces a command; an empty one says "no command" (allowed to all).
            self.check_script = ""
        if kind in (self.CheckType.NONE, self.CheckType.COMMAND):
            if self.check_target:
                errors["check_target"] = (
                    "Only a process, port, URL or file check takes a target: clear it or "
                    "pick one of those check types."
                )
            if (
                kind == self.CheckType.COMMAND
                and not self.check_script
                and self.field_ok("check_script")
            ):
                errors["check_script"] = "Enter the command to run, or pick another check type."
            return
        if not self.check_target:
            errors["check_target"] = (
                f"Enter what the {self.get_check_type_display()} check looks at."
            )
            return
        try:
            self.CHECK_TARGET_VALIDATORS[kind](self.check_target)
        except ValidationError as e:
            errors["check_target"] = e.messages

    def _check_vrid(self, errors, net, vrid):
        """The main instance's VRID against every other instance on an overlapping segment,
        this cluster's own further instances included (they share the hosts)."""
        clash = next((u for u in vrids_on_segment(net, exclude=self) if u.vrid == vrid), None)
        if clash:
            errors["virtual_router_id"] = clash.message(vrid, free_vrid(net, exclude=self))

    def _check_instances_on(self, errors, net):
        """Further instances on the cluster's network move with it: their VRIDs must be free
        on the new segment too (against other clusters; their own cluster's were checked)."""
        others = [
            u
            for u in vrids_on_segment(net, exclude=self)
            if not u.what.endswith(f"of cluster '{self.name}'")
        ]
        for inst in self.instances.filter(network="").order_by("id"):
            clash = next((u for u in others if u.vrid == inst.virtual_router_id), None)
            if clash:
                errors["network"] = (
                    f"On {net}, instance '{inst.name}' (VRID {inst.virtual_router_id}) would "
                    f"collide with {clash.what}: change that instance's VRID first, or give "
                    "it its own network."
                )
                return

    def free_vrid(self):
        """The lowest VRID no other instance on an overlapping segment uses (None when all are)."""
        net = _parsed(validators.parse_network, self.network)
        return None if net is None else free_vrid(net, exclude=self)

    def _check_against_nodes(self, errors, net):
        nodes = list(self.nodes.all())
        if self.unicast and len(nodes) == 1:
            errors["unicast"] = (
                "Unicast needs at least two nodes: add another node or use multicast."
            )
        weight = _checked_int(
            self.check_weight, constants.CHECK_WEIGHT_MIN, constants.CHECK_WEIGHT_MAX
        )
        if weight and len(nodes) > 1:
            spread = max(n.priority for n in nodes) - min(n.priority for n in nodes)
            if abs(weight) <= spread:
                errors["check_weight"] = (
                    f"A weight of {weight} cannot move the VIPs: the nodes' priorities span "
                    f"{spread}, so use a weight above {spread} in size (e.g. "
                    f"{'-' if weight < 0 else ''}{spread + 1}), or 0 to put a failing node in "
                    "FAULT."
                )
        if weight and "check_weight" not in errors:
            for inst in self.instances.filter(track_check=True).order_by("id"):
                prios = list(inst.priorities().values())
                spread = max(prios) - min(prios) if len(prios) > 1 else 0
                if abs(weight) <= spread:
                    errors["check_weight"] = (
                        f"A weight of {weight} cannot move the VIPs of instance '{inst.name}', "
                        f"which tracks this check: its priorities span {spread}. Use a weight "
                        f"above {spread} in size, or stop tracking the check there."
                    )
                    break
        if not self.unicast and net is not None:
            addresses = [(n.name, _parsed_address(n.address)) for n in nodes]
            outside = [name for name, ip in addresses if ip is not None and ip not in net]
            if outside:
                errors["network"] = (
                    f"Nodes {', '.join(outside)} are outside {net}; multicast VRRP needs every "
                    "node on this segment. Widen the network or use unicast."
                )

    def readiness_errors(self):
        """What stops this cluster from being rendered and pushed, keyed by field.

        Everything else is enforced on save; these concern the cluster as a whole, which may be
        incomplete while it is being set up.
        """
        errors = {}
        nodes = list(self.nodes.all())
        if not nodes:
            errors["nodes"] = "Add at least one node."
        if self.unicast and len(nodes) < 2:
            errors["unicast"] = (
                "Unicast needs at least two nodes: add another node or use multicast."
            )
        if not self.vips.exists():
            errors["vips"] = "Add at least one virtual IP."
        missing = [n.name for n in nodes if n.ssh_credential is None]
        if missing:
            errors["credential"] = (
                f"Nodes {', '.join(missing)} have no SSH credential: set one on the cluster or "
                "on each node."
            )
        for inst in self.instances.order_by("id"):
            for key, message in inst.readiness_errors().items():
                errors.setdefault(f"instances.{key}", message)
        for group in self.sync_groups.order_by("name"):
            if group.member_count() < 2:
                errors.setdefault(
                    "sync_groups",
                    f"Sync group '{group.name}' has fewer than two instances; keepalived ignores "
                    "such a group. Add an instance to it or delete it.",
                )
        return errors

    @property
    def instance_name(self):
        """The main vrrp_instance's name (constants.INSTANCE_PREFIX)."""
        return f"{constants.INSTANCE_PREFIX}{self.name}"

    def vrrp_instances(self):
        """Every VRRP instance of the cluster, the main one first, as InstanceSummary: what
        status, the push's verification, the drill and metrics need to judge each one."""
        vips = list(self.vips.select_related("instance").order_by("id"))
        nodes = list(self.nodes.all())
        out = [
            InstanceSummary(
                name=self.instance_name,
                instance=None,
                preempt=self.preempt,
                priorities={n.pk: n.priority for n in nodes},
                vips=[v for v in vips if v.instance_id is None],
            )
        ]
        for inst in self.instances.order_by("id"):
            out.append(
                InstanceSummary(
                    name=inst.keepalived_name,
                    instance=inst,
                    preempt=inst.preempt,
                    priorities=inst.priorities(),
                    vips=[v for v in vips if v.instance_id == inst.pk],
                )
            )
        return out

    def vip_family(self):
        first = self.vips.first()
        return ipaddress.ip_interface(first.address).version if first else 4


class Node(SkipFailedFieldsMixin, CleanCheckedConstraintsMixin, models.Model):
    cluster = models.ForeignKey(Cluster, on_delete=models.CASCADE, related_name="nodes")
    name = models.CharField(
        max_length=63,
        validators=[validators.name_validator],
        help_text="Also keepalived's router_id on that host.",
    )
    # IPv4-mapped IPv6 (::ffff:192.0.2.11) is stored as the IPv4 address it is, so the unique
    # constraint sees one host one way.
    address = NodeAddressField(
        unpack_ipv4=True,
        validators=[validators.validate_node_address],
        error_messages={"unique": "Another node already has this address; each host is one node."},
        help_text="Address for SSH and unicast VRRP.",
    )
    ssh_port = models.PositiveIntegerField(default=22, validators=_range(1, 65535))
    credential = models.ForeignKey(
        SSHCredential,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="nodes",
        help_text="Leave empty to use the cluster's credential.",
    )
    priority = models.PositiveSmallIntegerField(
        validators=_range(constants.PRIORITY_MIN, constants.PRIORITY_MAX),
        help_text="1-254; the highest holds the VIPs. Unique within the cluster.",
    )
    interface = models.CharField(
        max_length=constants.INTERFACE_NAME_MAX,
        blank=True,
        validators=[validators.validate_interface],
        help_text="Leave empty to use the cluster's interface.",
    )
    host_key_fingerprint = models.CharField(
        max_length=60,
        blank=True,
        validators=[validators.fingerprint_validator],
        help_text="Pinned SSH host key (SHA256 form). Filled in on first contact.",
    )
    # A key the node offered that differs from the pinned one: shown until an operator re-pins.
    offered_host_key_fingerprint = models.CharField(max_length=60, blank=True, editable=False)
    maintenance = models.BooleanField(
        default=False, help_text="Skip this node in pushes and move the VIPs off it."
    )
    # The node's own ed25519 key for signing notify reports (clusters/notify.py); deployed as a
    # root-only file by the push, never shown.
    notify_key = EncryptedTextField(default=_new_notify_key, editable=False)
    # Desired against pushed (issue 17): what vipanel would send this node now, and what it
    # last put there. They differ while a change is saved but not pushed ("pending push");
    # a live file that differs from the pushed one was edited on the node ("drift").
    # clusters.desired keeps desired_config_sha current; a push step that wrote the config or
    # found it identical records the pushed one (clusters.push). SHA-256 hex, "" when none.
    desired_config_sha = models.CharField(max_length=64, blank=True, editable=False)
    pushed_config_sha = models.CharField(max_length=64, blank=True, editable=False)
    # The pushed file itself, to show a drift's diff: it holds auth_pass, so it is encrypted.
    pushed_config = EncryptedTextField(blank=True, editable=False)
    pushed_at = models.DateTimeField(null=True, blank=True, editable=False)
    # Set by the upgrade for nodes an earlier release had pushed (it kept no record of what),
    # and by adoption (the node runs its own file): the next probe takes the live file as the
    # one last pushed (clusters.history).
    adopt_live_config = models.BooleanField(default=False, editable=False)
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    constraints_checked_in_clean = (
        "clusters_node_unique_priority_per_cluster",
        "clusters_node_unique_name_per_cluster",
    )

    class Meta:
        ordering = ["cluster", "-priority"]
        constraints = [
            models.UniqueConstraint(
                fields=["cluster", "name"], name="%(app_label)s_%(class)s_unique_name_per_cluster"
            ),
            models.UniqueConstraint(
                fields=["cluster", "priority"],
                name="%(app_label)s_%(class)s_unique_priority_per_cluster",
            ),
            models.UniqueConstraint(
                fields=["address"], name="%(app_label)s_%(class)s_unique_address"
            ),
            models.CheckConstraint(
                condition=models.Q(priority__gte=constants.PRIORITY_MIN)
                & models.Q(priority__lte=constants.PRIORITY_MAX),
                name="%(app_label)s_%(class)s_priority_range",
            ),
            models.CheckConstraint(
                condition=models.Q(ssh_port__gte=1) & models.Q(ssh_port__lte=65535),
                name="%(app_label)s_%(class)s_ssh_port_range",
            ),
        ]

    def __str__(self):
        return self.name

    @property
    def effective_interface(self):
        return self.interface or self.cluster.interface

    @property
    def ssh_credential(self):
        return self.credential or self.cluster.credential

    def clean(self):
        errors = {}
        # None when the field has reported the address.
        ip = _parsed_address(self.address) if self.field_ok("address") else None
        if self.cluster_id is not None:
            siblings = Node.objects.filter(cluster_id=self.cluster_id).exclude(pk=self.pk)
            if self.name and self.field_ok("name") and siblings.filter(name=self.name).exists():
                errors["name"] = "Another node of this cluster has this name; pick a different one."
            priority = _checked_int(self.priority, constants.PRIORITY_MIN, constants.PRIORITY_MAX)
            if priority is not None:
                self._check_priority(errors, siblings, priority)
            if ip is not None:
                self._check_address(errors, ip)
        if errors:
            raise ValidationError(errors)

    def _check_priority(self, errors, siblings, priority):
        others = dict(siblings.values_list("priority", "name"))
        if priority in others:
            free = _nearest_free(
                priority, set(others), constants.PRIORITY_MIN, constants.PRIORITY_MAX
            )
            errors["priority"] = (
                f"Priority {priority} is already used by node '{others[priority]}'; every node of "
                f"a cluster needs its own priority. Pick another, e.g. {free}."
            )
            return
        # A new or moved priority can widen the spread past what the check weight can move.
        weight = _checked_int(
            self.cluster.check_weight, constants.CHECK_WEIGHT_MIN, constants.CHECK_WEIGHT_MAX
        )
        if weight and others:
            lo, hi = min(others), max(others)
            if abs(weight) <= max(hi, priority) - min(lo, priority):
                errors["priority"] = (
                    f"The cluster's check weight of {weight} can only move the VIPs while the "
                    f"priorities span less than {abs(weight)}; the other nodes use {lo}-{hi}, so "
                    f"pick a priority from {max(hi - abs(weight) + 1, constants.PRIORITY_MIN)} to "
                    f"{min(lo + abs(weight) - 1, constants.PRIORITY_MAX)}, or raise the weight."
                )

    def _check_address(self, errors, ip):
        cluster = self.cluster
        if not cluster.unicast:
            net = _parsed(validators.parse_network, cluster.network)
            if net is not None and ip not in net:
                errors["address"] = (
                    f"{ip} is outside the cluster's network {net}; multicast VRRP needs every "
                    "node on that segment. Use an address inside it, or switch the cluster to "
                    "unicast."
                )
                return
        vip = VirtualIP.objects.filter(host_address=str(ip)).select_related("cluster").first()
        if vip:
            errors["address"] = (
                f"{ip} is a virtual IP of cluster '{vip.cluster.name}'; a node needs its own "
                "address, not one that moves between hosts."
            )


class VirtualIP(SkipFailedFieldsMixin, CleanCheckedConstraintsMixin, models.Model):
    cluster = models.ForeignKey(Cluster, on_delete=models.CASCADE, related_name="vips")
    # None: the cluster's main instance (the cluster row); else one of its further instances.
    instance = models.ForeignKey(
        "VrrpInstance",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="vips",
        help_text="Leave empty for the cluster's main instance.",
    )
    address = models.CharField(
        max_length=50,
        validators=[validators.validate_vip],
        help_text="Address with prefix length, e.g. 198.51.100.10/24.",
    )
    host_address = VIPHostField(max_length=39, editable=False, blank=True)
    label = models.CharField(
        max_length=64,
        blank=True,
        validators=[validators.validate_label],
        help_text="A note for people (not sent to keepalived).",
    )
    # In the adverts beside the instance's first VIP. vipanel advertises only the first one
    # (clusters/render.py says why); an adopted instance keeps the list its nodes advertise
    # now, since a node whose list differs ignores the others' adverts (issue 12: taking a
    # cluster over must not split it). Set by adoption only.
    advertised = models.BooleanField(default=False, editable=False)
    created = models.DateTimeField(auto_now_add=True)
    # When a push that carried this VIP first succeeded (or it was adopted from nodes already
    # serving it); None: never pushed ("pending push"). Until then the VIP is configuration
    # only: no holder is looked for, no event recorded.
    pushed_at = models.DateTimeField(null=True, blank=True, editable=False)

    constraints_checked_in_clean = ("clusters_virtualip_unique_host_address",)

    class Meta:
        ordering = ["cluster", "id"]
        verbose_name = "virtual IP"
        constraints = [
            models.UniqueConstraint(
                fields=["host_address"],
                name="%(app_label)s_%(class)s_unique_host_address",
                violation_error_message="This address is already a virtual IP; a VIP belongs "
                "to one cluster only.",
            ),
        ]

    def __str__(self):
        return self.address

    @property
    def ip(self):
        return ipaddress.ip_interface(self.address).ip

    def network_warning(self):
        """Why this VIP looks wrong without being an error, or "": it is outside the segment
        its instance runs on. keepalived holds any address and a routed VIP may well be
        elsewhere on purpose, so this is said, never refused; but a typo looks the same."""
        iface = _parsed(validators.parse_vip, self.address)
        segment = self.instance.segment if self.instance_id else self.cluster.network
        net = _parsed(validators.parse_network, segment)
        if iface is None or net is None or iface.ip in net:
            return ""
        return (
            f"VIP {self.address} is outside the network {net} its VRRP instance runs on. "
            "That is right only for an address routed to the holder; otherwise check for a "
            "typo."
        )

    def clean(self):
        iface = _parsed(validators.parse_vip, self.address) if self.field_ok("address") else None
        if iface is None:
            return  # the field validator has reported it
        # One spelling per address (IPv6 compressed, netmask as a prefix length).
        self.address = str(iface)
        self.host_address = str(iface.ip)
        ip = iface.ip
        other = (
            VirtualIP.objects.filter(host_address=str(ip))
            .exclude(pk=self.pk)
            .select_related("cluster")
            .first()
        )
        if other:
            raise ValidationError(
                {
                    "address": f"{ip} is already a virtual IP of cluster "
                    f"'{other.cluster.name}' ({other.address}); a VIP belongs to one cluster only."
                }
            )
        node = Node.objects.filter(address=str(ip)).select_related("cluster").first()
        if node:
            raise ValidationError(
                {
                    "address": f"{ip} is the address of node '{node.name}' (cluster "
                    f"'{node.cluster.name}'); a VIP must be an address no host owns."
                }
            )
        if self.cluster_id is None:
            return
        if self.instance_id is not None and self.instance.cluster_id != self.cluster_id:
            raise ValidationError(
                {
                    "instance": f"Instance '{self.instance.name}' belongs to another cluster; "
                    "pick one of this cluster's instances."
                }
            )
        if self.instance_id is not None:
            segment = _parsed(validators.parse_network, self.instance.segment)
            if segment is not None and segment.version != ip.version:
                raise ValidationError(
                    {
                        "address": f"Instance '{self.instance.name}' is on the IPv"
                        f"{segment.version} segment {segment}; VRIDs of IPv{ip.version} "
                        f"instances are counted per IPv{ip.version} segment. Set the "
                        f"instance's network to its IPv{ip.version} segment first."
                    }
                )
        # One address family and at most VIPS_PER_CLUSTER_MAX addresses per instance.
        siblings = [
            v.ip
            for v in VirtualIP.objects.filter(
                cluster_id=self.cluster_id, instance_id=self.instance_id
            ).exclude(pk=self.pk)
        ]
        where = f"instance '{self.instance.name}'" if self.instance_id else "main instance"
        if siblings and siblings[0].version != ip.version:
            raise ValidationError(
                {
                    "address": f"This {where}'s VIPs are IPv{siblings[0].version}; keepalived "
                    "takes one address family per instance. Add an instance for IPv"
                    f"{ip.version} (dual-stack) and put this address there."
                }
            )
        if len(siblings) >= constants.VIPS_PER_CLUSTER_MAX:
            raise ValidationError(
                {
                    "address": f"An instance has at most {constants.VIPS_PER_CLUSTER_MAX} virtual "
                    f"IPs and the {where} has them; remove one first or add another instance."
                }
            )


# --- Further VRRP instances of a cluster (issue 11) -------------------------------------------
# A cluster's first ("main") instance is the cluster row itself: its VRID, interface, auth,
# preemption, check and the VIPs with no instance. Every cluster made before several instances
# existed is therefore already a cluster with one instance, rendered byte for byte as before (no
# data moves, no VIP moves on the first push after the upgrade). VrrpInstance rows are the
# instances beyond the first: active/active mirrors, one per interface or VLAN, the other
# address family, one per service.


class VrrpInstance(SkipFailedFieldsMixin, CleanCheckedConstraintsMixin, models.Model):
    cluster = models.ForeignKey(Cluster, on_delete=models.CASCADE, related_name="instances")
    name = models.CharField(
        max_length=30,
        validators=[validators.name_validator],
        help_text="Rendered as vrrp_instance VI_<cluster>_<name>, e.g. B, ingress or v6.",
    )
    virtual_router_id = models.PositiveSmallIntegerField(
        "VRID", validators=_range(constants.VRID_MIN, constants.VRID_MAX)
    )
    interface = models.CharField(
        max_length=constants.INTERFACE_NAME_MAX,
        blank=True,
        validators=[validators.validate_interface],
        help_text="Leave empty to use each node's interface (the cluster's main interface).",
    )
    network = models.CharField(
        max_length=43,
        blank=True,
        validators=[validators.validate_network],
        help_text="The L2 segment of this instance's interface, when it is not the cluster's "
        "network (another VLAN or interface). VRIDs are unique per segment.",
    )
    advert_int = models.PositiveSmallIntegerField(
        default=1, validators=_range(constants.ADVERT_INT_MIN, constants.ADVERT_INT_MAX)
    )
    auth_pass = EncryptedTextField(
        blank=True,
        validators=[validators.validate_auth_pass],
        help_text="Optional VRRP password, at most 8 characters. Stored encrypted.",
    )
    unicast = models.BooleanField(
        default=False, help_text="Send adverts to the other nodes' addresses instead of multicast."
    )
    preempt = models.BooleanField(default=True)
    preempt_delay = models.PositiveSmallIntegerField(
        default=0, validators=[MaxValueValidator(constants.PREEMPT_DELAY_MAX)]
    )
    track_check = models.BooleanField(
        default=False,
        help_text="Track the cluster's health check in this instance too (its weight must "
        "exceed this instance's priority spread).",
    )
    sync_group = models.ForeignKey(
        "SyncGroup",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="instances",
        help_text="Instances of one sync group change state together.",
    )
    created = models.DateTimeField(auto_now_add=True)

    constraints_checked_in_clean = ("clusters_vrrpinstance_unique_name_per_cluster",)

    class Meta:
        ordering = ["cluster", "id"]
        verbose_name = "VRRP instance"
        constraints = [
            models.UniqueConstraint(
                fields=["cluster", "name"], name="%(app_label)s_%(class)s_unique_name_per_cluster"
            ),
            *vrrp_instance_constraints(),
        ]

    def __str__(self):
        return f"{self.cluster.name}/{self.name}"

    @property
    def segment(self):
        return self.network or self.cluster.network

    @property
    def keepalived_name(self):
        return f"{self.cluster.instance_name}_{self.name}"

    def priorities(self):
        """{node_id: priority} of this instance."""
        return dict(self.node_priorities.values_list("node_id", "priority"))

    def clean(self):
        errors = {}
        if self.cluster_id is None:
            return
        cluster = self.cluster
        if self.name and self.field_ok("name"):
            if cluster.instances.exclude(pk=self.pk).filter(name=self.name).exists():
                errors["name"] = "Another instance of this cluster has this name; pick another."
        net = None
        if self.field_ok("network"):
            net = _parsed(validators.parse_network, self.segment)
            if net is not None and self.network:
                self.network = str(net)
        vrid = _checked_int(self.virtual_router_id, constants.VRID_MIN, constants.VRID_MAX)
        if net is not None and vrid is not None:
            clash = next((u for u in vrids_on_segment(net, exclude=self) if u.vrid == vrid), None)
            if clash:
                errors["virtual_router_id"] = clash.message(vrid, free_vrid(net, exclude=self))
        if self.preempt_delay and not self.preempt:
            # keepalived: nopreempt and preempt_delay only work from initial state BACKUP, which
            # is the one state vipanel renders; a delay without preemption means nothing.
            errors["preempt_delay"] = (
                "A preempt delay only applies when preemption is on: set it to 0 or turn "
                "preempt on."
            )
        if self.sync_group_id is not None and self.sync_group.cluster_id != self.cluster_id:
            errors["sync_group"] = (
                f"Sync group '{self.sync_group.name}' belongs to another cluster; a sync group "
                "ties instances of one cluster. Pick one of this cluster's groups."
            )
        if self.pk:
            self._check_against_nodes(errors, cluster, net)
        if errors:
            raise ValidationError(errors)

    def _check_against_nodes(self, errors, cluster, net):
        prios = list(self.priorities().values())
        if self.unicast and cluster.nodes.count() == 1:
            errors["unicast"] = (
                "Unicast needs at least two nodes: add another node or use multicast."
            )
        weight = _checked_int(
            cluster.check_weight, constants.CHECK_WEIGHT_MIN, constants.CHECK_WEIGHT_MAX
        )
        if self.track_check and weight and len(prios) > 1:
            spread = max(prios) - min(prios)
            if abs(weight) <= spread:
                errors["track_check"] = (
                    f"The cluster's check weight of {weight} cannot move this instance's VIPs: "
                    f"its priorities span {spread}. Raise the weight above {spread} in size, "
                    "narrow the priorities, or do not track the check here."
                )
        vip_family = next(
            (ipaddress.ip_interface(v.address).version for v in self.vips.all()[:1]), None
        )
        if net is not None and vip_family and net.version != vip_family and "network" not in errors:
            errors["network"] = (
                f"This instance's VIPs are IPv{vip_family} but its segment {net} is "
                f"IPv{net.version}: give the instance its IPv{vip_family} network."
            )
        if self.unicast and vip_family:
            other = [n.name for n in cluster.nodes.all() if _family(n.address) != vip_family]
            if other:
                errors["unicast"] = (
                    f"Nodes {', '.join(other)} have no IPv{vip_family} address, the family of "
                    "this instance's VIPs; unicast adverts go to the nodes' addresses. Use "
                    "multicast for this instance."
                )

    def readiness_errors(self):
        errors = {}
        if not self.vips.exists():
            errors["vips"] = f"Instance '{self.name}': add at least one virtual IP."
        nodes = set(self.cluster.nodes.values_list("name", flat=True))
        have = set(self.node_priorities.values_list("node__name", flat=True))
        if nodes - have:
            errors["priorities"] = (
                f"Instance '{self.name}': give nodes {', '.join(sorted(nodes - have))} a "
                "priority in it."
            )
        return errors


def _family(address):
    ip = _parsed_address(address)
    return ip.version if ip is not None else None


class NodePriority(SkipFailedFieldsMixin, CleanCheckedConstraintsMixin, models.Model):
    """A node's priority in one of its cluster's further instances (the main instance's is
    Node.priority). Active/active is two instances with mirrored priorities."""

    instance = models.ForeignKey(
        VrrpInstance, on_delete=models.CASCADE, related_name="node_priorities"
    )
    node = models.ForeignKey(Node, on_delete=models.CASCADE, related_name="instance_priorities")
    priority = models.PositiveSmallIntegerField(
        validators=_range(constants.PRIORITY_MIN, constants.PRIORITY_MAX),
        help_text="1-254; the highest holds the instance's VIPs. Unique within the instance.",
    )

    constraints_checked_in_clean = (
        "clusters_nodepriority_unique_priority_per_instance",
        "clusters_nodepriority_unique_node_per_instance",
    )

    class Meta:
        ordering = ["instance", "-priority"]
        constraints = [
            models.UniqueConstraint(
                fields=["instance", "node"],
                name="%(app_label)s_%(class)s_unique_node_per_instance",
            ),
            models.UniqueConstraint(
                fields=["instance", "priority"],
                name="%(app_label)s_%(class)s_unique_priority_per_instance",
            ),
            models.CheckConstraint(
                condition=models.Q(priority__gte=constants.PRIORITY_MIN)
                & models.Q(priority__lte=constants.PRIORITY_MAX),
                name="%(app_label)s_%(class)s_priority_range",
            ),
        ]

    def __str__(self):
        return f"{self.node} in {self.instance}: {self.priority}"

    def clean(self):
        if self.instance_id is None or self.node_id is None:
            return
        errors = {}
        if self.node.cluster_id != self.instance.cluster_id:
            errors["node"] = (
                f"Node '{self.node.name}' is not in cluster '{self.instance.cluster.name}'; "
                "an instance runs on its own cluster's nodes only."
            )
        siblings = NodePriority.objects.filter(instance_id=self.instance_id).exclude(pk=self.pk)
        if siblings.filter(node_id=self.node_id).exists():
            errors["node"] = f"Node '{self.node.name}' already has a priority in this instance."
        priority = _checked_int(self.priority, constants.PRIORITY_MIN, constants.PRIORITY_MAX)
        if priority is not None and not errors:
            others = dict(siblings.values_list("priority", "node__name"))
            if priority in others:
                free = _nearest_free(
                    priority, set(others), constants.PRIORITY_MIN, constants.PRIORITY_MAX
                )
                errors["priority"] = (
                    f"Priority {priority} is already used by node '{others[priority]}' in "
                    f"instance '{self.instance.name}'; every node of an instance needs its own "
                    f"priority. Pick another, e.g. {free}."
                )
            elif self.instance.track_check and others:
                weight = _checked_int(
                    self.instance.cluster.check_weight,
                    constants.CHECK_WEIGHT_MIN,
                    constants.CHECK_WEIGHT_MAX,
                )
                lo, hi = min(min(others), priority), max(max(others), priority)
                if weight and abs(weight) <= hi - lo:
                    errors["priority"] = (
                        f"Instance '{self.instance.name}' tracks the cluster's check, whose weight "
                        f"of {weight} can only move its VIPs while its priorities span less than "
                        f"{abs(weight)}; {priority} would make them span {hi - lo}. Pick a "
                        "priority closer to the others, or raise the weight."
                    )
        if errors:
            raise ValidationError(errors)


class SyncGroup(SkipFailedFieldsMixin, CleanCheckedConstraintsMixin, models.Model):
    """vrrp_sync_group: when one member goes FAULT or BACKUP, all members follow (a router
    pair's outside and inside addresses move together). Members are the cluster's further
    instances (VrrpInstance.sync_group: one group at most each, by construction) and, with
    includes_main, the cluster's main instance."""

    cluster = models.ForeignKey(Cluster, on_delete=models.CASCADE, related_name="sync_groups")
    name = models.CharField(max_length=30, validators=[validators.name_validator])
    includes_main = models.BooleanField(
        default=False, help_text="The cluster's main instance (VI_<cluster>) is a member."
    )

    constraints_checked_in_clean = (
        "clusters_syncgroup_unique_name_per_cluster",
        "clusters_syncgroup_main_in_one_group",
    )

    class Meta:
        ordering = ["cluster", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["cluster", "name"], name="%(app_label)s_%(class)s_unique_name_per_cluster"
            ),
            # The main instance, like every instance, is in at most one group.
            models.UniqueConstraint(
                fields=["cluster"],
                condition=models.Q(includes_main=True),
                name="%(app_label)s_%(class)s_main_in_one_group",
            ),
        ]

    def __str__(self):
        return f"{self.cluster.name}/{self.name}"

    def clean(self):
        if self.cluster_id is None:
            return
        errors = {}
        others = SyncGroup.objects.filter(cluster_id=self.cluster_id).exclude(pk=self.pk)
        if self.name and self.field_ok("name") and others.filter(name=self.name).exists():
            errors["name"] = "Another sync group of this cluster has this name; pick another."
        if self.includes_main:
            taken = others.filter(includes_main=True).first()
            if taken:
                errors["includes_main"] = (
                    f"The main instance is already in sync group '{taken.name}'; an instance "
                    "belongs to one sync group at most. Take it out of that group first."
                )
        if errors:
            raise ValidationError(errors)

    def member_count(self):
        return self.instances.count() + (1 if self.includes_main else 0)


class CarriedBlock(models.Model):
    """A statement of an adopted node's keepalived.conf that vipanel does not model (an LVS
    virtual_server, vrrp_track_process, garp_* or notify lines, ...), kept byte for byte and
    written back into that node's file only (clusters/kaconf/model.py says why carried rather
    than refused; clusters/services/adopt.py who may adopt what).

    Never editable in vipanel: no form, API field or admin page writes one; only the adopt
    service creates them, from what it read on the node. The text runs as root there (a
    notify line, an LVS MISC_CHECK), which is why it never goes to another host:
    clusters.roles.readdress_violation keeps an operator from re-addressing its node."""

    class Context(models.TextChoices):
        TOP = "top", "top level"
        GLOBAL_DEFS = "global_defs", "inside global_defs"
        INSTANCE = "instance", "inside a vrrp_instance"
        SYNC_GROUP = "sync_group", "inside a vrrp_sync_group"

    node = models.ForeignKey(Node, on_delete=models.CASCADE, related_name="carried")
    context = models.CharField(max_length=16, choices=Context.choices)
    # With context "instance": None is the cluster's main instance.
    instance = models.ForeignKey(
        "VrrpInstance", on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    sync_group = models.ForeignKey(
        "SyncGroup", on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    keyword = models.CharField(max_length=100)
    source = models.CharField(max_length=300, help_text="file:line where it was read.")
    text = models.TextField()
    position = models.PositiveIntegerField()

    class Meta:
        ordering = ["node", "position"]
        constraints = [
            models.UniqueConstraint(
                fields=["node", "position"], name="%(app_label)s_%(class)s_unique_position"
            ),
        ]

    def __str__(self):
        return f"{self.node.name}: {self.keyword} ({self.source})"

    def clean(self):
        errors = {}
        if "\x00" in self.text or len(self.text.encode()) > constants.CARRIED_TEXT_MAX:
            errors["text"] = (
                f"A carried statement is text of at most {constants.CARRIED_TEXT_MAX} bytes."
            )
        if self.node_id is not None:
            cluster_id = self.node.cluster_id
            if self.instance_id is not None and (
                self.context != self.Context.INSTANCE or self.instance.cluster_id != cluster_id
            ):
                errors["instance"] = "The instance must be one of the node's cluster."
            if self.sync_group_id is None and self.context == self.Context.SYNC_GROUP:
                errors["sync_group"] = "Name the sync group the statement is carried in."
            if self.sync_group_id is not None and (
                self.context != self.Context.SYNC_GROUP or self.sync_group.cluster_id != cluster_id
            ):
                errors["sync_group"] = "The sync group must be one of the node's cluster."
        if errors:
            raise ValidationError(errors)


# --- Operations: pushes, observed state, failover history, audit ---------------------------


class ConfigPush(models.Model):
    """A rolling push of a cluster's rendered configs, one PushStep per node."""

    class State(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        INTERRUPTED = "interrupted"

    ACTIVE_STATES = (State.QUEUED, State.RUNNING)
    RESUMABLE_STATES = (State.FAILED, State.INTERRUPTED)

    class Kind(models.TextChoices):
        PUSH = "push"
        MAINTENANCE = "maintenance"
        # A failover drill is a record too, so it shares the one-operation-per-cluster rule.
        DRILL = "drill"

    cluster = models.ForeignKey(Cluster, on_delete=models.CASCADE, related_name="pushes")
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.PUSH)
    state = models.CharField(max_length=16, choices=State.choices, default=State.QUEUED)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created = models.DateTimeField(auto_now_add=True)
    started = models.DateTimeField(null=True, blank=True)
    finished = models.DateTimeField(null=True, blank=True)
    # Renewed by the worker while it runs; a stale one means the worker died (interrupted).
    heartbeat = models.DateTimeField(null=True, blank=True)
    detail = models.TextField(blank=True, help_text="Why the push failed or was interrupted.")
    # A drill's target: one further instance, or None for the cluster's main instance.
    drill_instance = models.ForeignKey(
        "VrrpInstance", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    log = models.TextField(blank=True)
    # The fencing token of the worker that claimed it: every later write is conditional on it.
    owner = models.CharField(max_length=32, blank=True, editable=False)
    # What it was predicted to do (clusters.impact.Impact.as_dict), made from the live files and
    # holders before any node was touched; judged afterwards by clusters.services.pushes.verdict.
    prediction = models.JSONField(default=dict, blank=True, editable=False)
    # Nodes an operator chose to leave untouched (unreachable): [{"node": name, "by": user}].
    skipped = models.JSONField(default=list, blank=True, editable=False)
    # Who held each VIP when the push ended ({vip address: [node names]}), for the verdict.
    observed = models.JSONField(default=dict, blank=True, editable=False)

    class Meta:
        ordering = ["-created"]
        constraints = [
            models.UniqueConstraint(
                fields=["cluster"],
                condition=models.Q(state__in=["queued", "running"]),
                name="%(app_label)s_%(class)s_one_active_per_cluster",
                violation_error_message="Another push of this cluster is queued or running.",
            ),
        ]

    def __str__(self):
        return f"push #{self.pk} of {self.cluster}"

    @property
    def is_active(self):
        return self.state in self.ACTIVE_STATES

    @property
    def is_resumable(self):
        # A drill is never run again by a resume: it stops keepalived on a node.
        return self.state in self.RESUMABLE_STATES and self.kind != self.Kind.DRILL

    @property
    def skipped_names(self):
        return [s.get("node", "") for s in self.skipped if isinstance(s, dict)]


class PushStep(models.Model):
    class State(models.TextChoices):
        PENDING = "pending"
        RUNNING = "running"
        UNCHANGED = "unchanged"
        APPLIED = "applied"
        SKIPPED = "skipped"
        FAILED = "failed"

    DONE_STATES = (State.UNCHANGED, State.APPLIED, State.SKIPPED)

    push = models.ForeignKey(ConfigPush, on_delete=models.CASCADE, related_name="steps")
    node = models.ForeignKey(Node, on_delete=models.SET_NULL, null=True, related_name="+")
    node_name = models.CharField(max_length=63)
    position = models.PositiveSmallIntegerField()
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    detail = models.TextField(blank=True)
    # keepalived -t (or other command) exit code and output, kept for the operator.
    exit_code = models.IntegerField(null=True, blank=True)
    output = models.TextField(blank=True)
    # Each command of the node's exec: [{"name", "exit_code", "output"}], in order.
    commands = models.JSONField(default=list, blank=True)
    started = models.DateTimeField(null=True, blank=True)
    finished = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["push", "position"]
        constraints = [
            models.UniqueConstraint(
                fields=["push", "position"], name="%(app_label)s_%(class)s_unique_position"
            ),
        ]

    def __str__(self):
        return f"{self.node_name}: {self.state}"

    @property
    def is_done(self):
        return self.state in self.DONE_STATES


class NodeState(models.Model):
    """What the last probe of a node saw (one row per node, overwritten by each sweep)."""

    node = models.OneToOneField(Node, on_delete=models.CASCADE, related_name="state")
    checked_at = models.DateTimeField()
    reachable = models.BooleanField(default=False)
    keepalived_running = models.BooleanField(null=True)
    vrrp_state = models.CharField(max_length=16, default="UNKNOWN")
    holds = models.JSONField(default=list)
    # The live file is neither what vipanel last pushed there nor what it would push now: it
    # was edited on the node (clusters.health.config_drift). None: nothing to compare with.
    drift = models.BooleanField(null=True)
    error = models.TextField(blank=True)
    host_key_problem = models.BooleanField(default=False)
    # SHA-256 of the live config file at the last probe ("" when absent or not read).
    config_sha = models.CharField(max_length=64, blank=True)
    # The live file as the probe read it when it drifted, for the drift's diff (read once per
    # different content; auth_pass inside, so encrypted), and its SHA-256.
    drift_config = EncryptedTextField(blank=True)
    drift_config_sha = models.CharField(max_length=64, blank=True)
    # When a notify report last set keepalived_running and vrrp_state (clusters.history): a
    # sweep whose probe started before it does not undo it.
    reported_at = models.DateTimeField(null=True, blank=True)


class VipState(models.Model):
    """Who holds a VIP now, as the panel knows it; the base that failover events are found on."""

    vip = models.OneToOneField(VirtualIP, on_delete=models.CASCADE, related_name="state")
    holder = models.ForeignKey(Node, on_delete=models.SET_NULL, null=True, related_name="+")
    since = models.DateTimeField()
    split_brain = models.BooleanField(default=False)
    no_holder = models.BooleanField(default=False)
    # When a sweep last observed this VIP (the start of its probe); notify reports leave it alone.
    checked_at = models.DateTimeField()
    # When a notify report last changed or confirmed the holder.
    notified_at = models.DateTimeField(null=True, blank=True)
    # Nodes whose keepalived is stopped while the address is still on their interface.
    stale_on = models.JSONField(default=list, blank=True)


class FailoverEvent(models.Model):
    class Kind(models.TextChoices):
        FAILOVER = "failover"
        SPLIT_BRAIN = "split_brain"
        SPLIT_BRAIN_END = "split_brain_end"
        NO_HOLDER = "no_holder"
        NO_HOLDER_END = "no_holder_end"
        DRILL = "drill"
        # keepalived is not running on a node, but the VIP is still on its interface (kill -9).
        STALE_ADDRESS = "stale_address"
        STALE_ADDRESS_END = "stale_address_end"

    class DetectedBy(models.TextChoices):
        SWEEP = "sweep"
        NOTIFY = "notify"
        DRILL = "drill"
        PUSH = "push"

    cluster = models.ForeignKey(Cluster, on_delete=models.CASCADE, related_name="failovers")
    vip = models.ForeignKey(VirtualIP, on_delete=models.SET_NULL, null=True, related_name="+")
    # Names as they were, so history survives renames and deletions.
    vip_address = models.CharField(max_length=50)
    # The VIP's vrrp_instance (VI_<cluster> or VI_<cluster>_<instance>), as it was.
    instance_name = models.CharField(max_length=100, blank=True)
    from_node = models.CharField(max_length=63, blank=True)
    to_node = models.CharField(max_length=63, blank=True)
    at = models.DateTimeField(db_index=True)
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.FAILOVER)
    detected_by = models.CharField(max_length=10, choices=DetectedBy.choices)
    detail = models.TextField(blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["cluster", "-at"], name="clusters_failover_cluster_at")]

    def __str__(self):
        return f"{self.vip_address}: {self.from_node or '-'} -> {self.to_node or '-'} ({self.kind})"


class NotifyNonce(models.Model):
    """Nonces of accepted notify reports, so a captured report cannot be replayed."""

    nonce = models.CharField(max_length=64, unique=True)
    received = models.DateTimeField(auto_now_add=True, db_index=True)
    # Whose report it was: the per-node rate limit counts these.
    node = models.ForeignKey(
        "Node", on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )


class AuditEntry(models.Model):
    """Who changed or pushed what, when, and with what result. Secrets are masked before here."""

    at = models.DateTimeField(auto_now_add=True, db_index=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    username = models.CharField(max_length=150, blank=True)
    action = models.CharField(max_length=40)
    object_type = models.CharField(max_length=40, blank=True)
    object_repr = models.CharField(max_length=200, blank=True)
    cluster = models.ForeignKey(
        Cluster, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    changes = models.JSONField(default=dict, blank=True)
    result = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name_plural = "audit entries"

    def __str__(self):
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.username} {self.action} {self.object_repr}"


# --- API tokens ------------------------------------------------------------------------------


class ApiToken(models.Model):
    """A key for the JSON API and /metrics, acting as its user with that user's role.

    Only the key's SHA-256 is stored: the key itself is shown once, when it is issued, and a
    database dump cannot be replayed against the API. The first characters stay readable
    (`prefix`) so a token can be told apart and revoked without knowing the key.
    """

    KEY_PREFIX = "vip_"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(
        max_length=100,
        blank=True,
        validators=[validators.validate_one_line],
        help_text="What the token is for, e.g. 'prometheus' or 'terraform'.",
    )
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    prefix = models.CharField(max_length=12, editable=False)
    created = models.DateTimeField(auto_now_add=True)
    last_used = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created", "-id"]
        verbose_name = "API token"

    def __str__(self):
        return f"{self.prefix}... ({self.user})"

    @staticmethod
    def hash_key(key: str) -> str:
        return hashlib.sha256(key.encode()).hexdigest()

    @classmethod
    def issue(cls, user, name=""):
        """-> (token, key). The key is returned this once and never stored."""
        key = cls.KEY_PREFIX + secrets.token_urlsafe(32)
        token = cls.objects.create(
            user=user, name=name, key_hash=cls.hash_key(key), prefix=key[: len(cls.KEY_PREFIX) + 6]
        )
        return token, key


# --- Per-user preferences --------------------------------------------------------------------


class Preferences(models.Model):
    """What a user chose for themselves. One row per user, made when first saved."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="preferences"
    )
    time_zone = models.CharField(
        max_length=64,
        blank=True,
        validators=[validators.validate_time_zone],
        help_text="Times on every page are shown in this zone; empty: your browser's.",
    )

    class Meta:
        verbose_name_plural = "preferences"

    def __str__(self):
        return f"preferences of {self.user}"
