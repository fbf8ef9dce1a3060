"""Every VRRP and keepalived limit vipanel enforces, in one place (../shared/DOMAIN.md)."""

VRID_MIN, VRID_MAX = 1, 255
# 255 is the "address owner" that track scripts cannot lower; the panel manages backups only.
PRIORITY_MIN, PRIORITY_MAX = 1, 254
# VRRPv2 advertisement interval, whole seconds.
ADVERT_INT_MIN, ADVERT_INT_MAX = 1, 255
# keepalived uses only the first 8 characters of auth_pass and silently truncates the rest.
AUTH_PASS_MAX = 8
PREEMPT_DELAY_MAX = 1000
# More than 20 addresses per instance need virtual_ipaddress_excluded; we keep within the limit.
VIPS_PER_CLUSTER_MAX = 20
# Linux IFNAMSIZ is 16 including the terminating NUL.
INTERFACE_NAME_MAX = 15
CHECK_WEIGHT_MIN, CHECK_WEIGHT_MAX = -253, 253
CHECK_INTERVAL_MIN, CHECK_INTERVAL_MAX = 1, 3600
CHECK_FALL_RISE_MIN, CHECK_FALL_RISE_MAX = 1, 100

DEFAULT_CONFIG_PATH = "/etc/keepalived/keepalived.conf"
DEFAULT_RELOAD_COMMAND = "systemctl reload-or-restart keepalived"

# keepalived's vrrp_instance names: VI_<cluster> for a cluster's main instance,
# VI_<cluster>_<instance> for its further ones (clusters/render.py checks the parts).
INSTANCE_PREFIX = "VI_"

# The iptables chain vipanel owns on every node; nothing else is touched.
IPTABLES_CHAIN = "VIPANEL-VRRP"
VRRP_PROTOCOL = 112
VRRP_MULTICAST_V4 = "224.0.0.18"
VRRP_MULTICAST_V6 = "ff02::12"

# keepalived's notify script (deployed by the push) writes the node's VRRP state here.
NOTIFY_SCRIPT_PATH = "/etc/keepalived/vipanel-notify.sh"
NOTIFY_STATE_FILE = "/run/vipanel-vrrp.state"
# keepalived writes its pid here when it starts (its default, and Debian's unit's).
KEEPALIVED_PID_FILE = "/run/keepalived.pid"
# The node's notify signing key (ed25519, PEM), readable by root only.
NOTIFY_KEY_PATH = "/etc/keepalived/vipanel-notify.key"

# A statement carried through from an adopted node's file (clusters.models.CarriedBlock): as
# large as the parser reads a whole file (clusters/kaconf/parser.py).
CARRIED_TEXT_MAX = 1024 * 1024
