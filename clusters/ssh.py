"""SSH to keepalived nodes: run a command, put a file, read a file. The only user of paramiko.

A pure library (no Django), so it can be tested on its own and used by the lab tests.

Trust rules (see DOMAIN.md, "Trust"):
- Host keys are pinned by SHA256 fingerprint. With no expected fingerprint the connection is
  made and ``Connection.fingerprint`` tells the caller what to pin; with one, a different key
  raises ``HostKeyMismatch`` right after the key exchange, before authentication, so nothing
  ever runs on a host that changed its key.
- Every step has a deadline: TCP connect, banner and key exchange, authentication, the whole
  command. Output is read while the command runs (a full channel window would stall it) and
  only the last ``MAX_OUTPUT_BYTES`` of each stream are kept.
- Every failure is one ``SSHError`` with a readable message naming the host and a ``permanent``
  flag: True when trying again cannot help (authentication, host key, bad private key).
"""

from __future__ import annotations

import base64
import hashlib
import io
import posixpath
import secrets
import select
import socket
import time
from dataclasses import dataclass, field
from typing import Self

import paramiko

MAX_OUTPUT_BYTES = 1_000_000
_KEY_CLASSES = (paramiko.Ed25519Key, paramiko.ECDSAKey, paramiko.RSAKey)


class SSHError(Exception):
    """Anything that went wrong talking to a host. ``permanent``: retrying will not help."""

    def __init__(self, message: str, permanent: bool = False):
        super().__init__(message)
        self.message = message
        self.permanent = permanent


class HostKeyMismatch(SSHError):
    """The host offered a key other than the pinned one. Nothing was sent to it."""

    def __init__(self, host: str, expected: str, offered: str):
        super().__init__(
            f"host key of {host} changed: expected {expected}, offered {offered}; "
            "nothing was run. If the host was reinstalled, compare and pin the new key.",
            permanent=True,
        )
        self.expected = expected
        self.offered = offered


# The most any file read from a node may hold (a keepalived.conf is a few KiB).
READ_LIMIT = 1024 * 1024


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


def connect(target: Target) -> Connection:
    """Open an authenticated connection, or raise SSHError. Pins nothing itself: a caller
    with no expected fingerprint reads ``conn.fingerprint`` and records it."""
    pkey = load_private_key(target.private_key, target.passphrase)
    where = target.where
    timeout = target.connect_timeout
    try:
        sock = socket.create_connection((target.host, target.port), timeout=timeout)
    except TimeoutError:
        raise SSHError(f"timed out connecting to {where} after {timeout:g}s") from None
    except ConnectionRefusedError:
        raise SSHError(f"connection refused by {where} (is sshd running?)") from None
    except socket.gaierror as e:
        raise SSHError(f"cannot resolve {target.host}: {e.strerror}") from None
    except OSError as e:
        raise SSHError(f"cannot connect to {where}: {e.strerror or e}") from None

    transport = paramiko.Transport(sock)
    try:
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
            # start_client returns silently when its deadline passes.
            raise SSHError(f"SSH handshake with {where} timed out after {timeout:g}s")

        offered = fingerprint(transport.get_remote_server_key())
        expected = _normal_fingerprint(target.expected_fingerprint)
        if expected and offered != expected:
            raise HostKeyMismatch(where, expected, offered)

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
    except BaseException:
        transport.close()
        raise
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


class Connection:
    """An authenticated SSH connection; reuse it for several calls, then close() it."""

    def __init__(self, target: Target, transport: paramiko.Transport, fingerprint: str):
        self.target = target
        self.fingerprint = fingerprint
        self._transport = transport
        self._sftp: paramiko.SFTPClient | None = None

    def __repr__(self):
        return f"<Connection {self.target.username}@{self.target.where}>"

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def where(self) -> str:
        return self.target.where

    def close(self) -> None:
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
                select.select([chan], [], [], min(remaining, 0.01) if pending else remaining)
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
        except (paramiko.SSHException, EOFError, OSError) as e:
            raise SSHError(
                f"running a command on {self.where} failed: {e or type(e).__name__}"
            ) from None
        finally:
            chan.close()
        stdout, stderr = out.text(), err.text()  # text() settles the dropped counts
        return Result(status, stdout, stderr, out.dropped, err.dropped)

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

    def stat_mode(self, path: str) -> int | None:
        """Permission bits of a remote file (e.g. 0o600), or None when it does not exist."""
        try:
            return self._sftp_client().stat(path).st_mode & 0o7777
        except FileNotFoundError:
            return None
        except (OSError, paramiko.SSHException, EOFError) as e:
            raise self._file_error("checking", path, e) from None
