"""SSH to keepalived nodes: run a command, put a file, read a file. The only user of paramiko.

A pure library (no Django), so it can be tested on its own and used by the lab tests.

Trust rules (see DOMAIN.md, "Trust"):
- Host keys are pinned by SHA256 fingerprint, and only a person pins one. With no expected
  fingerprint the key exchange is made and ``HostKeyNotTrusted`` (carrying the offered key) is
  raised before authentication; with one, a different key raises ``HostKeyMismatch`` at the same
  point. Nothing is ever sent to a host whose key nobody has trusted.
- Every step has a deadline: TCP connect, banner and key exchange, authentication, the whole
  command. Output is read while the command runs (a full channel window would stall it) and
  only the last ``MAX_OUTPUT_BYTES`` of each stream are kept.
- Every failure is one ``SSHError`` with a readable message naming the host and a ``permanent``
  flag: True when trying again cannot help (authentication, host key, bad private key). Any
  other exception paramiko raises (a garbage KEXINIT makes it raise UnicodeDecodeError) becomes
  an SSHError too.
- ``Pool`` keeps authenticated connections between calls (one per key, e.g. a node id); see it.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import posixpath
import secrets
import select
import socket
import stat
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Self

import paramiko

MAX_OUTPUT_BYTES = 1_000_000
IDLE_POLL_SECONDS = 1.0
_KEY_CLASSES = (paramiko.Ed25519Key, paramiko.ECDSAKey, paramiko.RSAKey)


class SSHError(Exception):
    """Anything that went wrong talking to a host. ``permanent``: retrying will not help.

    ``stage`` says how far ``connect`` got before it failed, for a person testing a node:
    "credential" (our private key), "connect" (TCP), "handshake" (SSH key exchange),
    "host_key" (not trusted or changed), "auth"; "" for everything after (commands, files).
    """

    def __init__(self, message: str, permanent: bool = False, stage: str = ""):
        super().__init__(message)
        self.message = message
        self.permanent = permanent
        self.stage = stage


class HostKeyMismatch(SSHError):
    """The host offered a key other than the pinned one. Nothing was sent to it."""

    def __init__(self, host: str, expected: str, offered: str):
        super().__init__(
            f"host key of {host} changed: expected {expected}, offered {offered}; "
            "nothing was run. If the host was reinstalled, compare and pin the new key.",
            permanent=True,
            stage="host_key",
        )
        self.expected = expected
        self.offered = offered


# The most any file read from a node may hold (a keepalived.conf is a few KiB).
READ_LIMIT = 1024 * 1024


class HostKeyNotTrusted(SSHError):
    """No key is pinned for this host yet: the offered one is in ``offered`` for a person to
    compare and trust. Authentication was not attempted; nothing was sent."""

    def __init__(self, host: str, offered: str):
        super().__init__(f"host key not trusted yet: {offered}", permanent=True, stage="host_key")
        self.host = host
        self.offered = offered


def fingerprint(pkey: paramiko.PKey) -> str:
    """The OpenSSH SHA256 fingerprint of a public key, as `ssh-keygen -lf` prints it."""
    digest = hashlib.sha256(pkey.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def _normal_fingerprint(fp: str) -> str:
    return fp.strip().rstrip("=")


@dataclass(frozen=True)
class Target:
    """Where and how to log in. ``connect_timeout`` bounds each step of connecting (TCP connect,
    banner and key exchange, authentication); ``command_timeout`` bounds a whole command or file
    operation unless ``run`` is given its own. The key and passphrase never appear in repr()."""

    host: str
    port: int
    username: str
    private_key: str = field(repr=False)
    passphrase: str = field(default="", repr=False)
    expected_fingerprint: str = ""
    connect_timeout: float = 5.0
    command_timeout: float = 30.0

    @property
    def where(self) -> str:
        return self.host if self.port == 22 else f"{self.host}:{self.port}"


@dataclass
class Result:
    exit_status: int
    stdout: str
    stderr: str
    # Bytes dropped from the start of each stream to keep memory bounded (0: nothing dropped).
    stdout_dropped: int = 0
    stderr_dropped: int = 0

    @property
    def ok(self) -> bool:
        return self.exit_status == 0

    @property
    def truncated(self) -> bool:
        return bool(self.stdout_dropped or self.stderr_dropped)


def load_private_key(text: str, passphrase: str = "") -> paramiko.PKey:
    """Parse an ed25519, ECDSA or RSA private key (OpenSSH or PEM text).

    Raises a permanent SSHError that says what is wrong and never quotes the key.
    """
    if not text or not text.strip():
        raise SSHError("no private key given", permanent=True)
    encrypted = False
    for cls in _KEY_CLASSES:
        try:
            return cls.from_private_key(io.StringIO(text), password=passphrase or None)
        except paramiko.PasswordRequiredException:
            encrypted = True
        except (paramiko.SSHException, ValueError, TypeError, IndexError):
            # The wrong class for this key, a wrong passphrase or garbage: try the next class.
            continue
    if encrypted and not passphrase:
        raise SSHError("the private key is encrypted and no passphrase was given", permanent=True)
    if passphrase:
        raise SSHError(
            "could not load the private key: wrong passphrase, or not an ed25519, ECDSA or RSA key",
            permanent=True,
        )
    raise SSHError(
        "could not load the private key: not an ed25519, ECDSA or RSA private key"
        " in OpenSSH or PEM form",
        permanent=True,
    )


def connect(target: Target, deadline: float | None = None) -> Connection:
    """Open an authenticated connection to a host whose key is pinned, or raise SSHError.

    Each step (TCP connect, banner and key exchange, authentication) gets ``connect_timeout``;
    ``deadline`` (time.monotonic()) also bounds them all together, so a host that answers each
    step slowly still costs no more than the caller's deadline.
    """
    try:
        pkey = load_private_key(target.private_key, target.passphrase)
    except SSHError as e:
        e.stage = "credential"
        raise
    where = target.where

    def left() -> float:
        if deadline is None:
            return target.connect_timeout
        remaining = min(target.connect_timeout, deadline - time.monotonic())
        if remaining <= 0:
            raise SSHError(f"no answer from {where} within the deadline")
        return remaining

    try:
        timeout = left()
    except SSHError as e:
        e.stage = "connect"
        raise
    try:
        sock = socket.create_connection((target.host, target.port), timeout=timeout)
    except TimeoutError:
        raise SSHError(
            f"timed out connecting to {where} after {timeout:g}s", stage="connect"
        ) from None
    except ConnectionRefusedError:
        raise SSHError(
            f"connection refused by {where} (is sshd running?)", stage="connect"
        ) from None
    except socket.gaierror as e:
        raise SSHError(f"cannot resolve {target.host}: {e.strerror}", stage="connect") from None
    except OSError as e:
        raise SSHError(f"cannot connect to {where}: {e.strerror or e}", stage="connect") from None

    try:
        transport = paramiko.Transport(sock)
    except Exception as e:
        sock.close()
        raise SSHError(
            f"SSH setup with {where} failed: {type(e).__name__}: {e}", stage="handshake"
        ) from None
    stage = "handshake"
    try:
        timeout = left()
        transport.banner_timeout = timeout
        transport.handshake_timeout = timeout
        transport.auth_timeout = timeout
        try:
            transport.start_client(timeout=timeout)
        except paramiko.IncompatiblePeer as e:
            raise SSHError(
                f"{where} speaks no SSH dialect we accept: {e}", permanent=True
            ) from None
        except (paramiko.SSHException, EOFError, OSError) as e:
            raise SSHError(f"SSH handshake with {where} failed: {e or type(e).__name__}") from None
        if not transport.is_active() or transport.host_key is None:
            # start_client returns silently when its deadline passes; the transport's thread
            # may also have died on something it could not parse (its exception is saved).
            saved = transport.get_exception()
            if saved is not None:
                raise SSHError(
                    f"SSH handshake with {where} failed: {type(saved).__name__}: {saved}"
                )
            raise SSHError(f"SSH handshake with {where} timed out after {timeout:g}s")

        offered = fingerprint(transport.get_remote_server_key())
        expected = _normal_fingerprint(target.expected_fingerprint)
        if not expected:
            raise HostKeyNotTrusted(where, offered)
        if offered != expected:
            raise HostKeyMismatch(where, expected, offered)

        stage = "auth"
        timeout = left()
        transport.auth_timeout = timeout
        try:
            transport.auth_publickey(target.username, pkey)
        except paramiko.BadAuthenticationType as e:
            raise SSHError(
                f"{where} does not accept public keys for {target.username}"
                f" (only {', '.join(e.allowed_types)})",
                permanent=True,
            ) from None
        except paramiko.AuthenticationException as e:
            text = str(e)
            if "timeout" in text.lower():
                raise SSHError(f"authentication on {where} timed out after {timeout:g}s") from None
            if "transport shut down" in text or "EOF" in text:
                raise SSHError(f"{where} closed the connection during authentication") from None
            raise SSHError(
                f"authentication failed for {target.username}@{where}: the key was not accepted",
                permanent=True,
            ) from None
        except (paramiko.SSHException, EOFError, OSError) as e:
            raise SSHError(f"authentication on {where} failed: {e or type(e).__name__}") from None
        if not transport.is_authenticated():
            raise SSHError(f"authentication failed for {target.username}@{where}", permanent=True)
    except SSHError as e:
        transport.close()
        e.stage = e.stage or stage
        raise
    except Exception as e:
        # Whatever else paramiko raises for a misbehaving server is that host's failure.
        transport.close()
        raise SSHError(f"SSH with {where} failed: {type(e).__name__}: {e}", stage=stage) from None
    except BaseException:
        transport.close()
        raise
    # paramiko's thread wakes every 0.1 s to look for a close; a sweep worker keeps hundreds of
    # idle connections, and 200 of them cost 82 ms of CPU a second that way (25 ms at 1 s,
    # measured on the lab). Once authenticated no deadline of ours depends on that tick, and
    # close() still ends the thread at once (it closes the socket).
    sock.settimeout(IDLE_POLL_SECONDS)
    return Connection(target, transport, offered)


class _Tail:
    """Keeps the last `limit` bytes written to it, and counts what it dropped."""

    def __init__(self, limit: int):
        self.limit = limit
        self.buf = bytearray()
        self.dropped = 0

    def feed(self, data: bytes) -> None:
        self.buf += data
        extra = len(self.buf) - self.limit
        # Trim in big steps so a stream of small reads does not copy the buffer each time.
        if extra > self.limit // 4 or (extra > 0 and len(data) >= self.limit):
            del self.buf[:extra]
            self.dropped += extra

    def text(self) -> str:
        extra = len(self.buf) - self.limit
        if extra > 0:
            del self.buf[:extra]
            self.dropped += extra
        text = self.buf.decode("utf-8", errors="replace")
        if self.dropped:
            text = f"[... {self.dropped} bytes dropped, last {len(self.buf)} kept ...]\n" + text
        return text


def _wait_readable(chan: paramiko.Channel, timeout: float) -> None:
    """Wait until `chan` has something to read, or `timeout` seconds. poll(), not select():
    a sweep worker keeps a connection per node it met, so its descriptors pass select()'s
    limit of 1024 at about a thousand nodes."""
    poller = select.poll()
    poller.register(chan, select.POLLIN)
    poller.poll(max(0.0, timeout) * 1000)


class Connection:
    """An authenticated SSH connection; reuse it for several calls, then close() it."""

    def __init__(self, target: Target, transport: paramiko.Transport, fingerprint: str):
        self.target = target
        self.fingerprint = fingerprint
        self._transport = transport
        self._sftp: paramiko.SFTPClient | None = None
        self._shell: paramiko.Channel | None = None
        self._shell_out = b""

    def __repr__(self):
        return f"<Connection {self.target.username}@{self.target.where}>"

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def where(self) -> str:
        return self.target.where

    @property
    def active(self) -> bool:
        """False once the link is known to be gone (closed by either side)."""
        return self._transport.is_active()

    def close(self) -> None:
        self._close_shell()
        if self._sftp is not None:
            try:
                self._sftp.close()
            except (OSError, paramiko.SSHException, EOFError):
                pass  # the transport is closed next anyway
            self._sftp = None
        self._transport.close()

    # Commands

    def run(self, command: str, timeout: float | None = None, stdin: bytes | None = None) -> Result:
        """Run a command; its exit status is returned, never raised. SSHError (temporary) when
        the deadline (``timeout`` or the target's ``command_timeout``) passes or the link drops."""
        timeout = self.target.command_timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        try:
            chan = self._transport.open_session(timeout=self.target.connect_timeout)
        except (paramiko.SSHException, EOFError, OSError) as e:
            raise SSHError(
                f"cannot open a session on {self.where}: {e or type(e).__name__}"
            ) from None
        out, err = _Tail(MAX_OUTPUT_BYTES), _Tail(MAX_OUTPUT_BYTES)
        pending = memoryview(stdin or b"")
        try:
            chan.exec_command(command)
            if not pending:
                chan.shutdown_write()
            while True:
                # Read both streams as data comes: a full channel window would stall the command.
                while chan.recv_ready():
                    out.feed(chan.recv(65536))
                while chan.recv_stderr_ready():
                    err.feed(chan.recv_stderr(65536))
                if pending:
                    while pending and chan.send_ready():
                        pending = pending[chan.send(pending[:32768]) :]
                    if not pending:
                        chan.shutdown_write()
                if chan.eof_received or chan.closed:
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise SSHError(f"command timed out after {timeout:g}s on {self.where}")
                # While stdin waits for window space there is no fd to wait on: poll briefly.
                _wait_readable(chan, min(remaining, 0.01) if pending else remaining)
            while chan.recv_ready():
                out.feed(chan.recv(65536))
            while chan.recv_stderr_ready():
                err.feed(chan.recv_stderr(65536))
            if not chan.status_event.wait(max(0.0, deadline - time.monotonic())):
                raise SSHError(f"command timed out after {timeout:g}s on {self.where}")
            status = chan.recv_exit_status()
            if status == -1 and not self._transport.is_active():
                raise SSHError(f"connection to {self.where} was lost while the command ran")
        except SSHError:
            raise
        except Exception as e:
            raise SSHError(
                f"running a command on {self.where} failed: {e or type(e).__name__}"
            ) from None
        finally:
            chan.close()
        stdout, stderr = out.text(), err.text()  # text() settles the dropped counts
        return Result(status, stdout, stderr, out.dropped, err.dropped)

    def run_kept(self, command: str, timeout: float | None = None) -> Result:
        """Run a short command in a shell kept open on this connection (`sh`, started by the
        first call): no session opened and no shell started on the node per call, only the
        command's own programs. For a command repeated every few seconds (the sweep's probe),
        where a session per call was most of the node's and much of our CPU. Its stdin is
        /dev/null, its stderr discarded, its output ends at a random marker line with its exit
        status. Errors as ``run``; after any error the shell is closed (the pool then drops the
        whole connection), so a command left running never answers the next call."""
        timeout = self.target.command_timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        try:
            if self._shell is None or self._shell.closed or self._shell.exit_status_ready():
                self._close_shell()
                self._shell = self._transport.open_session(timeout=self.target.connect_timeout)
                self._shell.exec_command("exec sh 2>/dev/null")
            marker = secrets.token_hex(16).encode()
            end = b"\n" + marker + b" "
            # The group's own newline ends a command that ends in a comment; "\n" before the
            # marker ends an output that lacks one (and is taken off again below).
            self._shell.sendall(
                b"{ "
                + command.encode()
                + b"\n} </dev/null 2>/dev/null; printf '\\n%s %d\\n' "
                + marker
                + b' "$?"\n'
            )
            while True:
                at = self._shell_out.find(end)
                line_end = self._shell_out.find(b"\n", at + len(end)) if at >= 0 else -1
                if line_end >= 0:
                    output = self._shell_out[:at]
                    status = int(self._shell_out[at + len(end) : line_end])
                    self._shell_out = self._shell_out[line_end + 1 :]
                    return Result(status, output.decode("utf-8", "replace"), "")
                if len(self._shell_out) > MAX_OUTPUT_BYTES:
                    raise SSHError(f"a command's output on {self.where} exceeded the limit")
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise SSHError(f"command timed out after {timeout:g}s on {self.where}")
                while self._shell.recv_stderr_ready():
                    self._shell.recv_stderr(65536)  # the login shell's own, if any: not ours
                # recv with a timeout waits on paramiko's own buffer: no fileno(), which would
                # give every kept shell a pipe (two descriptors) for as long as it is kept.
                self._shell.settimeout(min(remaining, 0.5))
                try:
                    data = self._shell.recv(65536)
                except TimeoutError:
                    continue
                if not data:
                    raise SSHError(f"the shell on {self.where} ended while a command ran")
                self._shell_out += data
        except SSHError:
            self._close_shell()
            raise
        except Exception as e:
            self._close_shell()
            raise SSHError(
                f"running a command on {self.where} failed: {e or type(e).__name__}"
            ) from None

    def _close_shell(self) -> None:
        shell, self._shell, self._shell_out = self._shell, None, b""
        if shell is not None:
            try:
                shell.close()
            except Exception:  # noqa: BLE001 - closing a broken channel may fail any way
                pass

    # Files

    def _sftp_client(self) -> paramiko.SFTPClient:
        if self._sftp is None:
            try:
                self._sftp = paramiko.SFTPClient.from_transport(self._transport)
            except (paramiko.SSHException, EOFError, OSError) as e:
                raise SSHError(
                    f"SFTP is not available on {self.where} ({e or type(e).__name__}); "
                    "sshd needs a 'Subsystem sftp' line",
                    permanent=True,
                ) from None
            self._sftp.get_channel().settimeout(self.target.command_timeout)
        return self._sftp

    def _file_error(self, action: str, path: str, e: BaseException) -> SSHError:
        if isinstance(e, (socket.timeout, TimeoutError)):
            return SSHError(
                f"{action} {path} on {self.where} timed out after {self.target.command_timeout:g}s"
            )
        permanent = isinstance(
            e, (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError)
        )
        reason = getattr(e, "strerror", None) or str(e) or type(e).__name__
        return SSHError(f"{action} {path} on {self.where} failed: {reason}", permanent=permanent)

    def put_temp(self, path: str, data: bytes, mode: int = 0o644) -> str:
        """Write ``data`` to a new temporary file beside ``path`` and return the temp file's path.
        The mode is set before any byte is written, so secrets are never readable by others."""
        directory, name = posixpath.split(path)
        temp = posixpath.join(directory, f".{name}.vipanel-tmp-{secrets.token_hex(6)}")
        sftp = self._sftp_client()
        try:
            with sftp.open(temp, "wbx") as f:
                f.chmod(mode)
                f.set_pipelined(True)
                f.write(data)
        except (OSError, paramiko.SSHException, EOFError) as e:
            self._remove_quietly(temp)
            raise self._file_error("writing", temp, e) from None
        return temp

    def rename(self, src: str, dst: str) -> None:
        """Atomic rename (POSIX rename over an existing file): dst is either old or new."""
        try:
            self._sftp_client().posix_rename(src, dst)
        except (OSError, paramiko.SSHException, EOFError) as e:
            raise self._file_error("renaming to", dst, e) from None

    def put(self, path: str, data: bytes, mode: int = 0o644) -> None:
        """Replace ``path`` atomically: write a temp file beside it, then rename it over."""
        temp = self.put_temp(path, data, mode)
        try:
            self.rename(temp, path)
        except SSHError:
            self._remove_quietly(temp)
            raise

    def remove(self, path: str) -> None:
        try:
            self._sftp_client().remove(path)
        except (OSError, paramiko.SSHException, EOFError) as e:
            raise self._file_error("removing", path, e) from None

    def _remove_quietly(self, path: str) -> None:
        try:
            self._sftp_client().remove(path)
        except (OSError, paramiko.SSHException, EOFError, SSHError):
            pass  # best effort: the error that brought us here is the one to report

    def get(self, path: str, limit: int = READ_LIMIT) -> bytes | None:
        """The content of a remote file, or None when it does not exist.

        At most `limit` bytes are read: a longer file (or a device such as /dev/zero, which never
        ends and reports size 0) is an SSHError instead of a worker reading forever.
        """
        try:
            with self._sftp_client().open(path, "rb") as f:
                data = f.read(limit + 1)
        except FileNotFoundError:
            return None
        except (OSError, paramiko.SSHException, EOFError) as e:
            raise self._file_error("reading", path, e) from None
        if len(data) > limit:
            raise SSHError(
                f"{self.where}: {path} is larger than {limit} bytes; vipanel reads no more "
                "(is it really keepalived's config file?)",
                permanent=True,
            )
        return data

    def file_kind(self, path: str) -> str | None:
        """What `path` is (symlinks followed): "file" for a regular file, "executable" for one
        with an x bit, "dir", "other" (device, FIFO, socket), or None when it does not exist."""
        try:
            mode = self._sftp_client().stat(path).st_mode
        except FileNotFoundError:
            return None
        except (OSError, paramiko.SSHException, EOFError) as e:
            raise self._file_error("checking", path, e) from None
        if mode is None:
            return "other"
        if stat.S_ISDIR(mode):
            return "dir"
        if not stat.S_ISREG(mode):
            return "other"
        return "executable" if mode & 0o111 else "file"

    def listdir(self, path: str, limit: int = 4096) -> list[str] | None:
        """The names in a remote directory (unsorted), or None when it is not one. More than
        `limit` entries is a permanent SSHError: nothing reads an unbounded listing."""
        try:
            names = self._sftp_client().listdir(path)
        except (FileNotFoundError, NotADirectoryError):
            return None
        except (OSError, paramiko.SSHException, EOFError) as e:
            if getattr(e, "errno", None) is None and "not a directory" in str(e).lower():
                return None
            raise self._file_error("listing", path, e) from None
        if len(names) > limit:
            raise SSHError(
                f"{self.where}: {path} has more than {limit} entries; vipanel lists no more",
                permanent=True,
            )
        return names

    def stat_mode(self, path: str) -> int | None:
        """Permission bits of a remote file (e.g. 0o600), or None when it does not exist."""
        try:
            return self._sftp_client().stat(path).st_mode & 0o7777
        except FileNotFoundError:
            return None
        except (OSError, paramiko.SSHException, EOFError) as e:
            raise self._file_error("checking", path, e) from None


# Connections kept between calls


def _identity(target: Target) -> tuple:
    """What a pooled connection was made for: a change of any of it means a new connection
    (and so a new host-key check). The secrets are hashed, never kept twice in the clear."""
    secret = hashlib.sha256(f"{target.private_key}\0{target.passphrase}".encode()).hexdigest()
    return (
        target.host,
        target.port,
        target.username,
        secret,
        _normal_fingerprint(target.expected_fingerprint),
    )


@dataclass
class PoolStats:
    handshakes: int = 0  # new connections tried (each checks the host key)
    reuses: int = 0
    dropped: int = 0  # closed because of an error, a change of target, or idleness


class Pool:
    """Authenticated connections kept per key (a node id), for one process.

    ``with pool.connection(key, target) as conn:`` lends the key's connection, or makes a new one
    (``connect``: the host key is checked). A connection is lent to one caller at a time; it goes
    back to the pool when the block ends without an exception and is closed and forgotten on any
    exception, so a dead link costs at most the one call that found it. It is also dropped when
    the target changes (address, port, user, key, passphrase or pinned host key), when it has
    been idle for ``idle_seconds``, or when the transport is no longer active.

    After a fork (Celery's prefork pool) the child starts with an empty pool: transports and
    their threads do not survive fork.
    """

    def __init__(self, idle_seconds: float = 60.0):
        self.idle_seconds = idle_seconds
        self.stats = PoolStats()
        self._lock = threading.Lock()
        self._idle: dict[object, tuple[tuple, float, Connection]] = {}
        self._pid = os.getpid()

    def _check_fork(self) -> None:
        if os.getpid() != self._pid:
            self._idle = {}
            self._lock = threading.Lock()
            self.stats = PoolStats()
            self._pid = os.getpid()

    def _take(self, key, identity) -> Connection | None:
        with self._lock:
            self._check_fork()
            entry = self._idle.pop(key, None)
        if entry is None:
            return None
        kept_for, last_used, conn = entry
        if (
            kept_for != identity
            or time.monotonic() - last_used > self.idle_seconds
            or not conn.active
        ):
            self._close(conn)
            return None
        return conn

    def _close(self, conn: Connection) -> None:
        with self._lock:
            self.stats.dropped += 1
        try:
            conn.close()
        except Exception:  # noqa: BLE001 - closing a broken link may fail any way; it is gone
            pass

    @contextmanager
    def connection(
        self, key, target: Target, deadline: float | None = None
    ) -> Iterator[Connection]:
        identity = _identity(target)
        conn = self._take(key, identity)
        if conn is None:
            with self._lock:
                self.stats.handshakes += 1  # attempts: a refused one costs a handshake too
            conn = connect(target, deadline)
        else:
            with self._lock:
                self.stats.reuses += 1
        try:
            yield conn
        except BaseException:
            self._close(conn)
            raise
        if not conn.active:
            self._close(conn)
            return
        with self._lock:
            self._check_fork()
            previous = self._idle.pop(key, None)
            self._idle[key] = (identity, time.monotonic(), conn)
        if previous is not None:
            self._close(previous[2])

    def discard(self, key) -> None:
        """Forget (and close) the key's connection, e.g. when its node is deleted."""
        with self._lock:
            self._check_fork()
            entry = self._idle.pop(key, None)
        if entry is not None:
            self._close(entry[2])

    def prune(self) -> None:
        """Close connections idle for longer than ``idle_seconds``."""
        now = time.monotonic()
        with self._lock:
            self._check_fork()
            stale = [k for k, (_, used, _) in self._idle.items() if now - used > self.idle_seconds]
            entries = [self._idle.pop(k) for k in stale]
        for _, _, conn in entries:
            self._close(conn)

    def clear(self) -> None:
        with self._lock:
            self._check_fork()
            entries, self._idle = list(self._idle.values()), {}
        for _, _, conn in entries:
            self._close(conn)

    def __len__(self) -> int:
        with self._lock:
            self._check_fork()
            return len(self._idle)
