"""Reading a node that already runs keepalived, for adoption (issue 12). Nothing is changed there.

- Host keys first: `offered_fingerprint` makes the key exchange only and returns the key the
  node offers, for a person to compare (nothing is authenticated or sent). `read_node` needs a
  fingerprint a person confirmed or typed, and a node offering another key is refused
  (ssh.HostKeyMismatch) before anything is read.
- The config: the file at config_path and every file its `include` lines name, resolved on the
  node as keepalived does (globs with braces, relative to the including file's directory,
  regular non-executable files only, in sorted order). Paths and glob patterns come from a
  remote file, so none of them ever reaches a shell: files are read, listed and checked over
  SFTP, and globs are matched here (fnmatch) against SFTP listings. Every file read stops at
  kaconf.MAX_FILE_BYTES and every listing at LISTING_LIMIT entries; the parser's limits (file
  count, include depth, loops, line length) apply as well.
- What it does now: one fixed command (no value from the node or the database in it): whether
  keepalived runs, the host name (keepalived's default config id for `@name` lines) and every
  address on the node's interfaces.

No database here: this runs where the services call it, and its results are plain data.
"""

import dataclasses
import fnmatch
import hashlib
import posixpath
import re
from dataclasses import dataclass, field

from clusters import kaconf, ssh
from clusters.status import parse_probe

LISTING_LIMIT = 4096
# Matches of one glob pattern; keepalived has no limit, the parser reads at most MAX_FILES.
GLOB_LIMIT = 256
_MAGIC = re.compile(r"[*?[]")
_BRACES = re.compile(r"\{([^{}]*,[^{}]*)\}")

STATE_COMMAND = (
    "if pidof keepalived >/dev/null 2>&1; then echo running=1; else echo running=0; fi; "
    "printf 'hostname='; uname -n; echo addresses:; ip -o addr show"
)


@dataclass
class NodeReading:
    """One node as adoption found it: its files, their parse, and what it does now."""

    address: str
    port: int
    fingerprint: str
    hostname: str = ""
    files: dict = field(default_factory=dict)  # path -> text, in reading order
    parsed: kaconf.ParsedConfig | None = None
    error: str = ""  # why the node could not be read or parsed (file:line for a ParseError)
    running: bool = False
    addresses: tuple = ()  # every address on the node, as text

    @property
    def where(self):
        return self.address if self.port == 22 else f"{self.address}:{self.port}"

    def digest(self):
        """What was read, hashed: the person accepts a proposal made from exactly this."""
        h = hashlib.sha256()
        for part in [self.where, self.fingerprint, self.error, str(self.running)]:
            h.update(part.encode() + b"\0")
        for path, text in self.files.items():
            h.update(path.encode() + b"\0" + text.encode() + b"\0")
        for address in sorted(self.addresses):
            h.update(address.encode() + b"\0")
        return h.hexdigest()


def offered_fingerprint(target: ssh.Target) -> str:
    """The SHA256 fingerprint of the key the node offers. Only the key exchange is made."""
    unpinned = dataclasses.replace(target, expected_fingerprint="")
    try:
        conn = ssh.connect(unpinned)
    except ssh.HostKeyNotTrusted as e:
        return e.offered
    conn.close()  # unreachable: connect never authenticates without a pinned key
    raise ssh.SSHError(f"{target.where}: no host key was offered", permanent=True)


def expand_braces(pattern: str) -> list[str]:
    """glob(3)'s GLOB_BRACE, which keepalived uses: 'a{b,c}d' -> ['abd', 'acd']."""
    match = _BRACES.search(pattern)
    if match is None:
        return [pattern]
    out = []
    for choice in match.group(1).split(","):
        out += expand_braces(pattern[: match.start()] + choice + pattern[match.end() :])
    return out


def remote_glob(conn, pattern: str) -> list[str]:
    """The regular, non-executable files matching `pattern` (absolute) on the node, as
    keepalived's include reads them; no shell, only SFTP listings and stats."""
    found = []
    for one in expand_braces(pattern):
        if not one.startswith("/"):
            raise OSError(f"not an absolute path: {one!r}")
        paths = ["/"]
        for part in [p for p in one.split("/") if p]:
            nxt = []
            for base in paths:
                if _MAGIC.search(part):
                    names = conn.listdir(base, limit=LISTING_LIMIT) or []
                    for name in sorted(names):
                        # As glob(3): a leading dot is matched only by a leading dot.
                        if name.startswith(".") and not part.startswith("."):
                            continue
                        if fnmatch.fnmatchcase(name, part):
                            nxt.append(posixpath.join(base, name))
                else:
                    nxt.append(posixpath.join(base, part))
            if len(nxt) > GLOB_LIMIT:
                raise OSError(f"{one} matches more than {GLOB_LIMIT} paths")
            paths = nxt
        found += [p for p in paths if p not in found and conn.file_kind(p) == "file"]
    return found


def _reader(conn, files):
    def read(path):
        kind = conn.file_kind(path)
        if kind is None:
            raise FileNotFoundError(2, "No such file or directory")
        if kind != "file":
            # keepalived reads only regular, non-executable files; a FIFO or device would
            # never end (or never start).
            raise OSError(f"not a regular non-executable file ({kind})")
        data = conn.get(path, limit=kaconf.MAX_FILE_BYTES)
        if data is None:
            raise FileNotFoundError(2, "No such file or directory")
        text = data.decode("utf-8", errors="replace")
        files[path] = text
        return text

    return read


def read_node(target: ssh.Target, config_path: str) -> NodeReading:
    """Connect with the confirmed host key and read the node's config and live state.

    A node that cannot be reached, or whose key is not the confirmed one, raises ssh.SSHError
    (ssh.HostKeyMismatch for the key); a config that cannot be read or parsed is a reading
    with `error` set, so the person sees every node's outcome side by side.
    """
    if not target.expected_fingerprint:
        raise ssh.SSHError(
            f"{target.where}: confirm the node's host key before anything is read",
            permanent=True,
        )
    reading = NodeReading(target.host, target.port, target.expected_fingerprint)
    with ssh.connect(target) as conn:
        result = conn.run(STATE_COMMAND)
        if result.exit_status != 0:
            raise ssh.SSHError(
                f"{target.where}: reading the live state failed (exit {result.exit_status}): "
                f"{(result.stderr or result.stdout).strip()[:300]}"
            )
        running, _, _, addresses = parse_probe(result.stdout)
        reading.running = running
        reading.addresses = tuple(sorted(str(a) for a in addresses))
        for line in result.stdout.partition("addresses:\n")[0].splitlines():
            if line.startswith("hostname="):
                reading.hostname = line.partition("=")[2].strip()[:255]
        config_id = reading.hostname.split(".")[0] or None
        try:
            reading.parsed = kaconf.parse_file(
                config_path,
                _reader(conn, reading.files),
                lambda pattern: remote_glob(conn, pattern),
                config_id=config_id,
            )
        except kaconf.ParseError as e:
            reading.error = str(e)
        except ssh.SSHError as e:
            reading.error = e.message
    return reading
