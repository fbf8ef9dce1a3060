"""Clusters, their nodes and virtual IPs, and the rules that keep a cluster pushable.

One rule set: ranges are field validators, cross-field and cross-row rules live in clean(), and
database constraints back up the ones that must hold even against a race. Forms, admin and the
API all call full_clean(), so they all get the same errors, each keyed by the field to fix.
"""

import ipaddress
import secrets

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from clusters import constants, validators
from clusters.crypto import EncryptedTextField


def _range(lo, hi):
    return [MinValueValidator(lo), MaxValueValidator(hi)]


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


class SSHCredential(models.Model):
    name = models.CharField(max_length=100, unique=True)
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


class Cluster(CleanCheckedConstraintsMixin, models.Model):
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
    check_script = models.CharField(
        max_length=255,
        blank=True,
        validators=[validators.validate_check_script],
        help_text="Optional health check run on every node, e.g. /usr/bin/pgrep haproxy.",
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
        validators=[validators.validate_absolute_path],
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
            models.UniqueConstraint(
                fields=["network", "virtual_router_id"],
                name="%(app_label)s_%(class)s_unique_vrid_per_network",
            ),
            models.CheckConstraint(
                condition=models.Q(virtual_router_id__gte=constants.VRID_MIN)
                & models.Q(virtual_router_id__lte=constants.VRID_MAX),
                name="%(app_label)s_%(class)s_vrid_range",
            ),
        ]

    def __str__(self):
        return self.name

    @property
    def ip_network(self):
        return ipaddress.ip_network(self.network, strict=False)

    def clean(self):
        errors = {}
        try:
            # One spelling per segment, so the unique constraint compares like with like.
            self.network = str(ipaddress.ip_network(self.network, strict=False))
        except ValueError:
            pass  # the field validator has reported it
        else:
            self._check_vrid(errors)
        if self.preempt_delay and not self.preempt:
            errors["preempt_delay"] = (
                "A preempt delay only applies when preemption is on: set it to 0 or turn "
                "preempt on."
            )
        if self.pk:
            self._check_against_nodes(errors)
        if errors:
            raise ValidationError(errors)

    def _check_vrid(self, errors):
        if self.virtual_router_id is None:
            return
        net = self.ip_network
        others = Cluster.objects.filter(virtual_router_id=self.virtual_router_id).exclude(
            pk=self.pk
        )
        for other in others:
            other_net = other.ip_network
            if other_net.version == net.version and other_net.overlaps(net):
                errors["virtual_router_id"] = (
                    f"VRID {self.virtual_router_id} is already used by cluster '{other.name}' on "
                    f"{other.network}, the same network segment; their adverts would collide. "
                    f"Pick another VRID, e.g. {self.free_vrid()}."
                )
                return

    def free_vrid(self):
        """The lowest VRID no other cluster on an overlapping segment uses (None when all are)."""
        try:
            net = self.ip_network
        except ValueError:
            return None
        used = {
            vrid
            for vrid, network in Cluster.objects.exclude(pk=self.pk).values_list(
                "virtual_router_id", "network"
            )
            if ipaddress.ip_network(network).version == net.version
            and ipaddress.ip_network(network).overlaps(net)
        }
        return next((v for v in range(constants.VRID_MIN, constants.VRID_MAX + 1) if v not in used), None)

    def _check_against_nodes(self, errors):
        priorities = list(self.nodes.values_list("priority", flat=True))
        if self.unicast and len(priorities) == 1:
            errors["unicast"] = "Unicast needs at least two nodes: add another node or use multicast."
        if self.check_script and self.check_weight and len(priorities) > 1:
            spread = max(priorities) - min(priorities)
            if abs(self.check_weight) <= spread:
                errors["check_weight"] = (
                    f"A weight of {self.check_weight} cannot move the VIPs: the nodes' priorities "
                    f"span {spread}, so use a weight above {spread} in size (e.g. "
                    f"{'-' if self.check_weight < 0 else ''}{spread + 1}), or 0 to put a failing "
                    "node in FAULT."
                )
        if not self.unicast:
            outside = [
                n.name
                for n in self.nodes.all()
                if ipaddress.ip_address(n.address) not in self.ip_network
            ]
            if outside:
                errors["network"] = (
                    f"Nodes {', '.join(outside)} are outside {self.network}; multicast VRRP "
                    "needs every node on this segment. Widen the network or use unicast."
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
            errors["unicast"] = "Unicast needs at least two nodes: add another node or use multicast."
        if not self.vips.exists():
            errors["vips"] = "Add at least one virtual IP."
        missing = [n.name for n in nodes if n.ssh_credential is None]
        if missing:
            errors["credential"] = (
                f"Nodes {', '.join(missing)} have no SSH credential: set one on the cluster or "
                "on each node."
            )
        return errors

    def vip_family(self):
        first = self.vips.first()
        return ipaddress.ip_interface(first.address).version if first else 4


class Node(CleanCheckedConstraintsMixin, models.Model):
    cluster = models.ForeignKey(Cluster, on_delete=models.CASCADE, related_name="nodes")
    name = models.CharField(
        max_length=63,
        validators=[validators.name_validator],
        help_text="Also keepalived's router_id on that host.",
    )
    address = models.GenericIPAddressField(
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
            models.UniqueConstraint(fields=["address"], name="%(app_label)s_%(class)s_unique_address"),
            models.CheckConstraint(
                condition=models.Q(priority__gte=constants.PRIORITY_MIN)
                & models.Q(priority__lte=constants.PRIORITY_MAX),
                name="%(app_label)s_%(class)s_priority_range",
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
        if self.address:
            try:
                # One spelling per address (IPv6 compressed), so uniqueness compares like with like.
                self.address = str(ipaddress.ip_address(self.address))
            except ValueError:
                pass
        if self.cluster_id is not None:
            siblings = Node.objects.filter(cluster_id=self.cluster_id).exclude(pk=self.pk)
            if self.name and siblings.filter(name=self.name).exists():
                errors["name"] = "Another node of this cluster has this name; pick a different one."
            if self.priority is not None:
                clash = siblings.filter(priority=self.priority).first()
                if clash:
                    used = set(siblings.values_list("priority", flat=True))
                    free = next(
                        p for p in range(constants.PRIORITY_MAX, 0, -1) if p not in used
                    )
                    errors["priority"] = (
                        f"Priority {self.priority} is already used by node '{clash.name}'; every "
                        f"node of a cluster needs its own priority. Pick another, e.g. {free}."
                    )
            if self.address and "address" not in errors:
                self._check_address(errors)
        if errors:
            raise ValidationError(errors)

    def _check_address(self, errors):
        try:
            ip = ipaddress.ip_address(self.address)
        except ValueError:
            return
        cluster = self.cluster
        if not cluster.unicast and cluster.network:
            try:
                net = cluster.ip_network
            except ValueError:
                net = None
            if net is not None and ip not in net:
                errors["address"] = (
                    f"{ip} is outside the cluster's network {cluster.network}; multicast VRRP "
                    "needs every node on that segment. Use an address inside it, or switch the "
                    "cluster to unicast."
                )
                return
        for vip in VirtualIP.objects.select_related("cluster"):
            if vip.ip == ip:
                errors["address"] = (
                    f"{ip} is a virtual IP of cluster '{vip.cluster.name}'; a node needs its own "
                    "address, not one that moves between hosts."
                )
                return


class VirtualIP(models.Model):
    cluster = models.ForeignKey(Cluster, on_delete=models.CASCADE, related_name="vips")
    address = models.CharField(
        max_length=50,
        validators=[validators.validate_vip],
        help_text="Address with prefix length, e.g. 198.51.100.10/24.",
    )
    label = models.CharField(
        max_length=64,
        blank=True,
        validators=[validators.validate_label],
        help_text="A note for people (not sent to keepalived).",
    )
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["cluster", "id"]
        verbose_name = "virtual IP"
        constraints = [
            models.UniqueConstraint(
                fields=["address"],
                name="%(app_label)s_%(class)s_unique_address",
                violation_error_message="This address is already a virtual IP; a VIP belongs "
                "to one cluster only.",
            ),
        ]

    def __str__(self):
        return self.address

    @property
    def ip(self):
        return ipaddress.ip_interface(self.address).ip

    def clean(self):
        try:
            iface = ipaddress.ip_interface(self.address)
        except ValueError:
            return  # the field validator has reported it
        self.address = str(iface)
        if self.cluster_id is None:
            return
        ip = iface.ip
        for other in VirtualIP.objects.exclude(pk=self.pk).select_related("cluster"):
            if other.ip == ip:
                raise ValidationError(
                    {
                        "address": f"{ip} is already a virtual IP of cluster "
                        f"'{other.cluster.name}'; a VIP belongs to one cluster only."
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
        siblings = list(VirtualIP.objects.filter(cluster_id=self.cluster_id).exclude(pk=self.pk))
        if siblings and siblings[0].ip.version != ip.version:
            raise ValidationError(
                {
                    "address": f"This cluster's VIPs are IPv{siblings[0].ip.version}; keepalived "
                    "takes one address family per instance. Make another cluster for IPv"
                    f"{ip.version}."
                }
            )
        if len(siblings) >= constants.VIPS_PER_CLUSTER_MAX:
            raise ValidationError(
                {
                    "address": f"A cluster has at most {constants.VIPS_PER_CLUSTER_MAX} virtual "
                    "IPs; remove one first or make another cluster."
                }
            )
