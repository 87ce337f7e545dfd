"""The guard on outgoing requests: webhooks and syncs reach the public internet only.

A webhook URL is chosen by a user, and the server sends requests to it from inside
the network it runs in. Without a guard, ``http://169.254.169.254/`` would read the
cloud's instance credentials and ``http://10.0.0.5:9200/`` an internal database
(server-side request forgery). So every URL is checked twice:

- when it is saved (:func:`check_url`): scheme, user info, the host as written in
  any of its disguises (``2130706433``, ``0x7f.1``, ``[::ffff:127.0.0.1]``…), and the
  addresses the name resolves to now;
- when a request connects (:func:`guarded_client`, :func:`guarded_sync_client`):
  the name is resolved again, every address is checked, and the connection goes to
  one of the checked addresses. Connecting by name after checking would let DNS
  answer differently the second time (DNS rebinding). TLS still verifies the
  certificate of the name, and the ``Host`` header carries it.

``settings.webhook_allow`` (``STRATA_WEBHOOK_ALLOW``) names hosts or networks that may
be reached although private, for local use and tests.

>>> check_url("https://hooks.example.com/in", allow=())  # doctest: +SKIP
'https://hooks.example.com/in'
>>> check_url("http://127.0.0.1:9000/", allow=())  # doctest: +SKIP
Traceback (most recent call last):
InputError: 127.0.0.1 is a loopback address: webhooks cannot reach it; ...
"""

from __future__ import annotations

import ipaddress
import re
import socket
import ssl
import typing
from collections.abc import Iterable, Sequence

import anyio
import certifi
import httpcore
import httpx

from strata.errors import InputError

IP = ipaddress.IPv4Address | ipaddress.IPv6Address

SCHEMES = ("http", "https")
#: Names that are internal whatever they resolve to.
INTERNAL_NAMES = frozenset(
    {"localhost", "metadata", "metadata.google.internal", "metadata.goog", "instance-data"}
)
#: Instance metadata services (AWS, GCP and Azure; ECS tasks; Alibaba; AWS over IPv6).
METADATA = frozenset(
    ipaddress.ip_address(a)
    for a in ("169.254.169.254", "169.254.170.2", "100.100.100.200", "fd00:ec2::254")
)
_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_PRIVATE = tuple(
    ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7")
)
_BROADCAST = ipaddress.ip_address("255.255.255.255")
_COMPATIBLE = ipaddress.ip_network("::/96")
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
#: One label of a host name, as it goes on the wire (international names in punycode).
_LABEL = re.compile(r"[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?")
#: IPv4 written as inet_aton reads it: 1 to 4 parts, each decimal, octal (0…) or hex (0x…).
_NUMERIC_HOST = re.compile(r"(0x[0-9a-f]*|[0-9]+)(\.(0x[0-9a-f]*|[0-9]+)){0,3}", re.IGNORECASE)


class Refused(InputError):
    """A URL or address that outgoing requests may not reach."""


def check_url(url: str, allow: Sequence[str], *, purpose: str = "webhooks") -> str:
    """``url`` checked for saving (raises :class:`Refused`), in normal form.

    Names are resolved now and every address checked; a name that does not resolve
    yet is accepted (it is checked again on every connection).

    >>> check_url("https://example.com/hook", allow=())  # doctest: +SKIP
    'https://example.com/hook'
    """
    guard = Guard(allow, purpose=purpose)
    parsed = guard.check_url(url)
    host = ascii_host(parsed)
    if guard.literal(host) is None and not guard.allowed_name(host):
        try:
            addresses = resolve(host, parsed.port or _default_port(parsed.scheme))
        except (OSError, UnicodeError, ValueError):
            addresses = []
        guard.check_addresses(host, addresses)
    return str(parsed)


def guarded_client(
    allow: Sequence[str],
    timeout: float,
    *,
    purpose: str = "webhooks",
    verify: ssl.SSLContext | None = None,
    **kwargs: typing.Any,
) -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` that connects only to checked addresses.

    Redirects are not followed and proxy variables are ignored (a proxy would connect
    by name, unchecked). A refused address raises :class:`Refused`. ``verify``: the TLS
    context (default: the certifi authorities).

    >>> async with guarded_client(allow=(), timeout=15) as client:  # doctest: +SKIP
    ...     await client.post("https://hooks.example.com/in", content=b"{}")
    """
    guard = Guard(allow, purpose=purpose)
    return httpx.AsyncClient(
        transport=_AsyncTransport(guard, verify),
        timeout=timeout,
        follow_redirects=False,
        trust_env=False,
        **kwargs,
    )


def guarded_sync_client(
    allow: Sequence[str],
    timeout: float,
    *,
    purpose: str = "syncs",
    verify: ssl.SSLContext | None = None,
    **kwargs: typing.Any,
) -> httpx.Client:
    """The blocking twin of :func:`guarded_client`, for scripts and worker threads."""
    guard = Guard(allow, purpose=purpose)
    return httpx.Client(
        transport=_SyncTransport(guard, verify),
        timeout=timeout,
        follow_redirects=False,
        trust_env=False,
        **kwargs,
    )


def ascii_host(url: httpx.URL) -> str:
    """The host of ``url`` as it goes on the wire: punycode for international names."""
    return url.raw_host.decode("ascii", "replace")


def resolve(host: str, port: int) -> list[IP]:
    """Every address ``host`` resolves to (blocking)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return _addresses(infos)


def why_refused(ip: IP) -> str | None:
    """What kind of non-public address ``ip`` is ("a loopback address"), or None if public."""
    if ip in METADATA:
        return "a cloud metadata address"
    if isinstance(ip, ipaddress.IPv6Address):
        # First, whatever IPv4 address it carries (newer Pythons judge some of these forms
        # by their IPv4 address themselves, older ones do not).
        inner = embedded_ipv4(ip)
        why = why_refused(inner) if inner is not None else None
        if why:
            return f"an IPv6 form of {inner}, {why}"
        if ip.is_site_local:
            return "a site-local address"
    if ip.is_unspecified:
        return "the unspecified address"
    if ip == _BROADCAST:
        return "the broadcast address"
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_link_local:
        return "a link-local address"
    if ip.is_multicast:
        return "a multicast address"
    if ip in _CGNAT:
        return "a shared (carrier-grade NAT) address"
    if any(ip in net for net in _PRIVATE if net.version == ip.version):
        return "a private address"
    if ip.is_reserved:
        return "a reserved address"
    if not ip.is_global:
        return "not a public address"
    return None


def embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries (mapped, compatible, 6to4, NAT64, Teredo).

    For Teredo the client, or the server when the client is public: either reached
    through the tunnel is a way in.
    """
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        server, client = ip.teredo
        return client if why_refused(client) else server
    compatible = ip in _COMPATIBLE and int(ip) > 1  # not :: nor ::1
    if compatible or any(ip in net for net in _NAT64):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


class Guard:
    """The checks of one allow-list; shared by the save-time and connect-time checks."""

    def __init__(self, allow: Iterable[str], *, purpose: str = "webhooks"):
        self.purpose = purpose
        self.names: set[str] = set()
        self.networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        for entry in allow:
            entry = entry.strip().lower()
            if not entry:
                continue
            try:
                self.networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
            except ValueError:
                self.names.add(entry.rstrip("."))

    # -- the URL ----------------------------------------------------------------------------
    def check_url(self, url: str | httpx.URL) -> httpx.URL:
        """The URL parsed as httpx will send it, if its scheme, user info and host pass."""
        try:
            parsed = url if isinstance(url, httpx.URL) else httpx.URL(str(url).strip())
        except httpx.InvalidURL as exc:
            raise Refused(f"{str(url)[:200]!r} is not a URL: {exc}") from None
        if parsed.scheme not in SCHEMES:
            shown = f"{parsed.scheme}:// URLs" if parsed.scheme else "URLs without http://"
            raise Refused(f"{shown} are refused: {self.purpose} use http:// or https:// only")
        if parsed.userinfo:
            raise Refused(
                f"{self.purpose} URLs may not hold a user name or password (user@host): "
                "they would be shown wherever the URL is; give the host alone"
            )
        host = ascii_host(parsed)
        if not host:
            raise Refused(f"{str(url)[:200]!r} has no host")
        self.check_host(host)
        return parsed

    def check_host(self, host: str) -> None:
        """Refuse a host that is internal as written: a name, or an address in any notation."""
        name = host.lower().rstrip(".")
        if self.allowed_name(name):
            return
        if name in INTERNAL_NAMES or name.endswith(".localhost"):
            raise Refused(self._message(name, "an internal name"))
        ip = self.literal(host)
        if ip is not None:
            self._check_ip(host, ip)
            return
        if _NUMERIC_HOST.fullmatch(name):
            try:
                ip = ipaddress.IPv4Address(socket.inet_aton(name))
            except OSError:
                raise Refused(f"{host} is neither a host name nor an IP address") from None
            why = why_refused(ip) if not self._allowed_ip(ip) else None
            raise Refused(
                self._message(host, f"{ip} written in another form, {why}")
                if why
                else f"{host} is {ip} written in another form: write the address as {ip}"
            )
        if len(name) > 253 or not all(_LABEL.fullmatch(label) for label in name.split(".")):
            raise Refused(f"{host[:100]!r} is not a valid host name")

    def literal(self, host: str) -> IP | None:
        """The address ``host`` is, when written the standard way."""
        try:
            return ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            return None

    def allowed_name(self, host: str) -> bool:
        return host.lower().rstrip(".") in self.names

    # -- addresses --------------------------------------------------------------------------
    def check_addresses(self, host: str, addresses: Sequence[IP]) -> list[IP]:
        """``addresses`` (of ``host``) if every one may be reached; else :class:`Refused`."""
        if self.allowed_name(host):
            return list(addresses)
        for ip in addresses:
            self._check_ip(host, ip, resolved=True)
        return list(addresses)

    def _check_ip(self, host: str, ip: IP, *, resolved: bool = False) -> None:
        if self._allowed_ip(ip):
            return
        why = why_refused(ip)
        if why is None:
            return
        if resolved:
            raise Refused(self._message(host, f"{why} ({ip})", verb="resolves to"))
        raise Refused(self._message(host, why))

    def _allowed_ip(self, ip: IP) -> bool:
        return any(ip in net for net in self.networks if net.version == ip.version)

    def _message(self, host: str, why: str, *, verb: str = "is") -> str:
        return (
            f"{host} {verb} {why}: {self.purpose} cannot reach it; "
            "for local testing add it to STRATA_WEBHOOK_ALLOW"
        )


def _default_port(scheme: str) -> int:
    return 443 if scheme == "https" else 80


def _addresses(infos: Iterable[tuple]) -> list[IP]:
    seen: list[IP] = []
    for _family, _type, _proto, _canon, sockaddr in infos:
        ip = ipaddress.ip_address(str(sockaddr[0]).split("%")[0])
        if ip not in seen:
            seen.append(ip)
    return seen


def _ssl_context() -> ssl.SSLContext:
    return ssl.create_default_context(cafile=certifi.where())


# -- connect time: httpcore network backends that resolve, check, then connect -----------------
# httpcore asks its network backend to connect to (host, port) with the URL's host;
# answering with a socket to a checked address keeps the connection pool keyed by
# the name (no sharing across names), TLS verifying the name, and Host carrying it.
class _AsyncBackend(httpcore.AsyncNetworkBackend):
    def __init__(self, guard: Guard):
        self.guard = guard
        self.inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: typing.Iterable[typing.Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        self.guard.check_host(host)
        literal = self.guard.literal(host)
        if literal is not None:
            addresses = [literal]
        else:
            try:
                with anyio.fail_after(timeout):
                    infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            except (OSError, TimeoutError, UnicodeError, ValueError) as exc:
                raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from None
            addresses = self.guard.check_addresses(host, _addresses(infos))
        return await _first_connection(
            addresses,
            lambda ip: self.inner.connect_tcp(
                str(ip), port, timeout, local_address, socket_options=socket_options
            ),
        )

    async def connect_unix_socket(self, *args, **kwargs):  # pragma: no cover - never asked
        raise httpcore.ConnectError("unix sockets are not reachable from here")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


async def _first_connection(addresses, connect):
    last: Exception | None = None
    for ip in addresses:
        try:
            return await connect(ip)
        except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
            last = exc
    raise last or httpcore.ConnectError("no address to connect to")


class _SyncBackend(httpcore.NetworkBackend):
    def __init__(self, guard: Guard):
        self.guard = guard
        self.inner = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: typing.Iterable[typing.Any] | None = None,
    ) -> httpcore.NetworkStream:
        self.guard.check_host(host)
        literal = self.guard.literal(host)
        if literal is not None:
            addresses = [literal]
        else:
            try:
                found = resolve(host, port)
            except (OSError, UnicodeError, ValueError) as exc:
                raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from None
            addresses = self.guard.check_addresses(host, found)
        last: Exception | None = None
        for ip in addresses:
            try:
                return self.inner.connect_tcp(
                    str(ip), port, timeout, local_address, socket_options=socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        raise last or httpcore.ConnectError("no address to connect to")

    def connect_unix_socket(self, *args, **kwargs):  # pragma: no cover - never asked
        raise httpcore.ConnectError("unix sockets are not reachable from here")

    def sleep(self, seconds: float) -> None:
        self.inner.sleep(seconds)


#: Many endpoints in parallel: the pool must not be what makes one wait for another.
LIMITS = httpx.Limits(max_connections=1000, max_keepalive_connections=100, keepalive_expiry=30)


class _AsyncTransport(httpx.AsyncHTTPTransport):
    """httpx's transport over a pool whose network backend is the guard.

    httpx does not take a network backend, so the pool it builds is replaced (its
    ``_pool`` is what every method of the transport uses).
    """

    def __init__(self, guard: Guard, verify: ssl.SSLContext | None = None):
        super().__init__(trust_env=False, limits=LIMITS)
        self.guard = guard
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=verify or _ssl_context(),
            max_connections=LIMITS.max_connections,
            max_keepalive_connections=LIMITS.max_keepalive_connections,
            keepalive_expiry=LIMITS.keepalive_expiry,
            network_backend=_AsyncBackend(guard),
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.guard.check_url(request.url)
        return await super().handle_async_request(request)


class _SyncTransport(httpx.HTTPTransport):
    """The blocking twin of :class:`_AsyncTransport`."""

    def __init__(self, guard: Guard, verify: ssl.SSLContext | None = None):
        super().__init__(trust_env=False, limits=LIMITS)
        self.guard = guard
        self._pool = httpcore.ConnectionPool(
            ssl_context=verify or _ssl_context(),
            max_connections=LIMITS.max_connections,
            max_keepalive_connections=LIMITS.max_keepalive_connections,
            keepalive_expiry=LIMITS.keepalive_expiry,
            network_backend=_SyncBackend(guard),
        )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.guard.check_url(request.url)
        return super().handle_request(request)
