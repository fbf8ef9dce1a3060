"""Field validators for every value that reaches keepalived.conf, iptables or a shell.

Each accepts only a small, explicit alphabet, so no value can start a new keepalived keyword or
block (newline, braces, '#', '!', quotes) or a new shell command (';', '$(', '|', '&', backticks).
Messages say what is wrong and how to fix it.
"""

import ipaddress
import posixpath
import re

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator

from clusters import constants, timefmt

# Names become keepalived's router_id and instance name, and appear in a config comment.
name_validator = RegexValidator(
    r"\A[A-Za-z0-9][A-Za-z0-9._-]{0,62}\Z",
    "Use 1-63 characters: letters, digits, '.', '_' or '-', starting with a letter or digit.",
)

username_validator = RegexValidator(
    r"\A[a-z_][a-z0-9_.-]{0,31}\Z",
    "Use a Linux user name: up to 32 lower-case letters, digits, '_', '.' or '-', "
    "starting with a letter or '_'.",
)

fingerprint_validator = RegexValidator(
    r"\ASHA256:[A-Za-z0-9+/]{43}\Z",
    "Use the SHA256 form printed by `ssh-keygen -lf`, e.g. SHA256:followed by 43 characters.",
)


def validate_one_line(value):
    # For names only people read (never sent to a node): any text on one line. Control characters
    # would garble logs, and PostgreSQL cannot even store a NUL byte.
    if re.search(r"[\x00-\x1f\x7f]", value):
        raise ValidationError("Use one line of text, without tabs or control characters.")


def validate_time_zone(value):
    # A user's preference: empty means "my browser's zone"; anything else an IANA name.
    if value and timefmt.zone(value) is None:
        raise ValidationError(
            f"'{value[:64]}' is not a time zone this server knows; pick one from the list "
            "(an IANA name such as Europe/Berlin or America/New_York)."
        )


def validate_interface(value):
    # Linux refuses '/', ':' and whitespace in names; we also refuse anything that could escape
    # a keepalived keyword or an iptables argument, so this alphabet is narrower than the kernel's.
    pattern = rf"[A-Za-z0-9_.-]{{1,{constants.INTERFACE_NAME_MAX}}}"
    if not re.fullmatch(pattern, value) or value in (".", ".."):
        raise ValidationError(
            "Use a Linux interface name of 1-%(max)d characters: letters, digits, '_', '.' or '-' "
            "(for example eth0 or ens3).",
            params={"max": constants.INTERFACE_NAME_MAX},
        )


def validate_auth_pass(value):
    if len(value) > constants.AUTH_PASS_MAX:
        raise ValidationError(
            "keepalived uses only the first %(max)d characters of auth_pass and drops the rest; "
            "use at most %(max)d.",
            params={"max": constants.AUTH_PASS_MAX},
        )
    # Printable ASCII without space, minus what keepalived or a shell would read as syntax:
    # '#' and '!' start comments, quotes, backslash and braces change parsing, and ';', '&', '|',
    # '<', '>', '(', ')', '$' and '`' are shell syntax (the value must be safe wherever it lands).
    if not re.fullmatch(r"[A-Za-z0-9%*+,\-./:=?@\[\]^_~]+", value):
        raise ValidationError(
            "Use letters, digits and % * + , - . / : = ? @ [ ] ^ _ ~ only (no spaces, quotes, "
            "'#', '!', '$', ';', '&', '|', '<', '>', parentheses, braces or backslash)."
        )


# Only the characters an address or prefix can be written with. Python's ipaddress also accepts
# an IPv6 zone id ('fe80::1%eth0'), and a zone id may hold any character at all, newlines and
# braces included, and survives str(): the alphabet is checked before parsing.
ADDRESS_CHARS = re.compile(r"[0-9A-Fa-f:.]+")
PREFIXED_ADDRESS_CHARS = re.compile(r"[0-9A-Fa-f:.]+/[0-9A-Fa-f:.]+")


def parse_address(value):
    """The ipaddress address for a bare IP string (no zone id, no whitespace), or ValueError."""
    if not isinstance(value, str) or not ADDRESS_CHARS.fullmatch(value):
        raise ValueError(f"{value!r} is not an IP address")
    return ipaddress.ip_address(value)


def _missing_prefix(value):
    try:
        parse_address(value)
    except ValueError:
        return False
    return True


def parse_network(value):
    """The ipaddress network for a CIDR string, or ValidationError saying how to write it."""
    network = None
    if PREFIXED_ADDRESS_CHARS.fullmatch(value):
        try:
            network = ipaddress.ip_network(value, strict=False)
        except ValueError:
            pass
    if network is None:
        if _missing_prefix(value):
            raise ValidationError("Add the prefix length, for example 192.0.2.0/24.")
        raise ValidationError(
            "Enter the network segment in CIDR form, for example 192.0.2.0/24 or 2001:db8::/64."
        )
    if network.version == 6 and network.network_address.ipv4_mapped is not None:
        raise ValidationError("Write an IPv4 network in IPv4 form, for example 192.0.2.0/24.")
    return network


def validate_network(value):
    parse_network(value)


def parse_vip(value):
    """The ipaddress interface for an 'address/prefix' string, or ValidationError saying why."""
    iface = None
    if PREFIXED_ADDRESS_CHARS.fullmatch(value):
        try:
            iface = ipaddress.ip_interface(value)
        except ValueError:
            pass
    if iface is None:
        if _missing_prefix(value):
            raise ValidationError("Add the prefix length, for example 198.51.100.10/24.")
        raise ValidationError(
            "Enter an address with its prefix length, for example 198.51.100.10/24."
        )
    ip = iface.ip
    if ip.version == 6 and ip.ipv4_mapped is not None:
        raise ValidationError(
            "Write an IPv4 address in IPv4 form, for example %(ip)s/24.",
            params={"ip": str(ip.ipv4_mapped)},
        )
    if (
        ip.is_multicast
        or ip.is_unspecified
        or ip.is_loopback
        or ip.is_link_local
        or (ip.version == 4 and ip.is_reserved)
    ):
        raise ValidationError(
            "A virtual IP must be a unicast address hosts can reach; %(ip)s is not.",
            params={"ip": str(ip)},
        )
    if (
        iface.version == 4
        and iface.network.prefixlen < 31
        and ip
        in (
            iface.network.network_address,
            iface.network.broadcast_address,
        )
    ):
        raise ValidationError(
            "%(ip)s is the network or broadcast address of %(net)s; pick a host address.",
            params={"ip": str(ip), "net": str(iface.network)},
        )
    return iface


def validate_vip(value):
    parse_vip(value)


def validate_node_address(value):
    # Runs after Django's own IP validator, which reports malformed values; this one only judges
    # well-formed addresses (and must not crash on the others).
    try:
        ip = parse_address(value)
    except ValueError:
        return
    if ip.is_multicast or ip.is_unspecified or ip.is_loopback or ip.is_link_local:
        raise ValidationError(
            "Enter the node's own unicast address (the one SSH and VRRP use); %(ip)s is not one.",
            params={"ip": value},
        )


def validate_absolute_path(value):
    # The path is quoted for the shell anyway; the narrow alphabet keeps logs and configs readable.
    if (
        not re.fullmatch(r"/[A-Za-z0-9._/-]{1,254}", value)
        or "/../" in value + "/"
        or "//" in value
    ):
        raise ValidationError(
            "Use an absolute path of letters, digits, '.', '_', '-' and '/', without '..', "
            "for example /etc/keepalived/keepalived.conf."
        )
    if value.endswith("/"):
        raise ValidationError("Name a file, not a directory: remove the trailing '/'.")


def validate_config_path(value):
    """keepalived's config file: a .conf file directly under one of the allowed directories.

    A push renames a file over this path as root and a preview sends its content back, so it
    may only ever name keepalived's own file: not /etc/shadow, a key file or a device.
    """
    validate_absolute_path(value)
    dirs = [d.rstrip("/") for d in settings.VIPANEL_CONFIG_DIRS]
    name = posixpath.basename(value)
    parent = posixpath.dirname(value)
    # One level below an allowed directory, a plain name: no hidden files ('.x.conf', editor
    # and dpkg leftovers), no '..' or '.' components, nothing that is not a '.conf' file.
    if (
        parent not in dirs
        or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]*(\.[A-Za-z0-9_-]+)*\.conf", name)
        or any(part in (".", "..") for part in value.split("/"))
    ):
        raise ValidationError(
            "Name a .conf file directly in %(dirs)s, for example "
            "/etc/keepalived/keepalived.conf (no '..', no hidden or other files).",
            params={"dirs": " or ".join(f"{d}/" for d in dirs)},
        )


# --- Typed health checks -----------------------------------------------------------------------
# Each is one parameter, checked here and rendered by clusters/render.py through a fixed command.
# Every alphabet starts with a letter or digit (or '/'), so no value can become an option.


def validate_check_process(value):
    # pgrep -x compares with the 15-character kernel process name (comm).
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,14}", value):
        raise ValidationError(
            "Enter a process name as `pgrep -x` sees it: 1-15 letters, digits, '.', '_' or "
            "'-', starting with a letter or digit (for example haproxy)."
        )


def validate_check_port(value):
    if not re.fullmatch(r"[1-9][0-9]{0,4}", value) or not 1 <= int(value) <= 65535:
        raise ValidationError("Enter a TCP port on the node, a whole number from 1 to 65535.")


# http(s)://host[:port][/path]: a DNS name, an IPv4 address or a bracketed IPv6 address, and a
# path of unreserved characters. No query, fragment, user info, '%', quotes or spaces.
CHECK_URL = re.compile(
    r"https?://(?:[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?|\[[0-9A-Fa-f:.]{2,45}\])"
    r"(?::[1-9][0-9]{0,4})?(?:/[A-Za-z0-9._~/-]{0,150})?"
)


def validate_check_url(value):
    if len(value) > 200 or not CHECK_URL.fullmatch(value):
        raise ValidationError(
            "Enter an http:// or https:// URL of at most 200 characters: host, optional port "
            "and a path of letters, digits and . _ ~ / - (no query, '%', quotes or spaces), "
            "for example http://127.0.0.1:8404/health."
        )
    port = re.search(r"\]?:([0-9]+)(?:/|$)", value.split("//", 1)[1])
    if port and not 1 <= int(port.group(1)) <= 65535:
        raise ValidationError("The URL's port must be from 1 to 65535.")


def validate_check_file(value):
    try:
        validate_absolute_path(value)
    except ValidationError:
        raise ValidationError(
            "Enter the absolute path of the file to look for: letters, digits, '.', '_', '-' "
            "and '/', without '..', for example /run/haproxy.pid."
        ) from None
    if any(part in (".", "..") for part in value.split("/")):
        raise ValidationError("Write the path without '.' or '..' components.")


def validate_check_script(value):
    # keepalived splits the script line on spaces and runs it without a shell; quotes or shell
    # syntax would be passed literally (or break the quoted string), so they are refused.
    if len(value) > 255 or not re.fullmatch(r"/[A-Za-z0-9._/-]+( [A-Za-z0-9._/:=,@%+-]+)*", value):
        raise ValidationError(
            "Use an absolute path to an executable, optionally followed by arguments made of "
            "letters, digits and . _ / : = , @ % + -, separated by single spaces (no shell "
            "syntax, quotes or newlines). At most 255 characters."
        )


def validate_reload_command(value):
    # This is a shell command by design (e.g. `systemctl reload keepalived`, or a lab's
    # `kill -HUP ...`); only admins set it and every change is audited. One line of printable
    # ASCII keeps it from smuggling a second command after a newline or a control character.
    if not value.strip():
        raise ValidationError("Enter the command that reloads keepalived on a node.")
    if not re.fullmatch(r"[\x20-\x7e]{1,255}", value):
        raise ValidationError(
            "Use one line of at most 255 printable ASCII characters (no newlines, tabs or "
            "control characters)."
        )


def validate_label(value):
    # Only people read it, but it is shown next to config and may land in a config comment:
    # the same narrow alphabet as everything else, plus spaces.
    if not re.fullmatch(r"[A-Za-z0-9 ._,:/@+-]{0,64}", value):
        raise ValidationError(
            "Use at most 64 letters, digits, spaces and . _ , : / @ + - (no quotes, '#', ';', "
            "'$', braces or other symbols)."
        )
