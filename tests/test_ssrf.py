"""The SSRF guard: internal addresses in every disguise are refused when a URL is saved,
and again when a request connects (names resolved by the guard itself)."""

from __future__ import annotations

import asyncio
import socket
import ssl

import httpx
import pytest

from strata.actions.ssrf import Refused, check_url, guarded_client, guarded_sync_client
from tests.test_webhooks import Receiver, Reply

#: (URL, what the refusal says)
REFUSED = [
    ("http://127.0.0.1/", "loopback"),
    ("http://127.1.2.3:8080/x", "loopback"),
    ("http://localhost/", "internal name"),
    ("http://LOCALHOST./", "internal name"),
    ("http://api.localhost/", "internal name"),
    ("http://[::1]/", "loopback"),
    ("http://0.0.0.0/", "unspecified"),
    ("http://[::]/", "unspecified"),
    ("http://10.0.0.1/", "private"),
    ("http://172.16.5.4/", "private"),
    ("http://172.31.255.255/", "private"),
    ("http://192.168.1.1/", "private"),
    ("http://[fc00::1]/", "private"),
    ("http://[fd12:3456::1]/", "private"),
    ("http://169.254.1.1/", "link-local"),
    ("http://[fe80::1]/", "link-local"),
    ("http://100.64.0.1/", "carrier-grade NAT"),
    ("http://224.0.0.1/", "multicast"),
    ("http://[ff02::1]/", "multicast"),
    ("http://255.255.255.255/", "broadcast"),
    ("http://240.0.0.1/", "reserved"),
    ("http://169.254.169.254/latest/meta-data/", "cloud metadata"),
    ("http://[fd00:ec2::254]/", "cloud metadata"),
    ("http://metadata.google.internal/computeMetadata/v1/", "internal name"),
    # IPv6 forms carrying an IPv4 address
    ("http://[::ffff:127.0.0.1]/", "127.0.0.1, a loopback"),
    ("http://[::ffff:7f00:1]/", "127.0.0.1, a loopback"),
    ("http://[::ffff:169.254.169.254]/", "cloud metadata"),
    ("http://[::127.0.0.1]/", "127.0.0.1, a loopback"),
    ("http://[::10.0.0.1]/", "10.0.0.1, a private"),
    ("http://[2002:7f00:1::]/", "127.0.0.1, a loopback"),
    ("http://[2002:a00:1::1]/", "10.0.0.1, a private"),
    ("http://[64:ff9b::7f00:1]/", "127.0.0.1, a loopback"),
    ("http://[64:ff9b::a9fe:a9fe]/", "169.254.169.254, a cloud metadata"),
    ("http://[64:ff9b::c0a8:101]/", "192.168.1.1, a private"),
    ("http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/", "127.0.0.1, a loopback"),  # Teredo
    # IPv4 written as one number, in octal or hex, or shortened
    ("http://2130706433/", "127.0.0.1 written in another form, a loopback"),
    ("http://0x7f.1/", "127.0.0.1 written in another form"),
    ("http://017700000001/", "127.0.0.1 written in another form"),
    ("http://0x7f000001/", "127.0.0.1 written in another form"),
    ("http://127.1/", "127.0.0.1 written in another form"),
    ("http://0/", "0.0.0.0 written in another form"),
    ("http://10.1/", "10.0.0.1 written in another form, a private"),
    ("http://0xa9.0xfe.0xa9.0xfe/", "169.254.169.254 written in another form"),
    ("http://134744072/", "write the address as 8.8.8.8"),  # public, but disguised
    # user info and schemes
    ("http://example.com@127.0.0.1/", "user name or password"),
    ("http://user:pass@example.com/", "user name or password"),
    ("http://a\\@127.0.0.1/", "user name or password"),
    ("ftp://example.com/", "ftp:// URLs are refused"),
    ("file:///etc/passwd", "file:// URLs are refused"),
    ("gopher://127.0.0.1:6379/_", "gopher:// URLs are refused"),
    ("javascript:alert(1)", "javascript:// URLs are refused"),
    ("//example.com/hook", "without http"),
]


@pytest.mark.parametrize(("url", "why"), REFUSED, ids=[u for u, _ in REFUSED])
def test_internal_urls_are_refused_when_saved(url, why):
    with pytest.raises(Refused) as refused:
        check_url(url, allow=())
    message = str(refused.value)
    assert why in message
    assert "\n" not in message


def test_there_are_at_least_25_of_them():
    assert len(REFUSED) >= 25


def test_a_refusal_says_what_and_why_in_one_line():
    with pytest.raises(Refused) as refused:
        check_url("http://127.0.0.1:9000/hook", allow=())
    assert str(refused.value) == (
        "127.0.0.1 is a loopback address: webhooks cannot reach it; "
        "for local testing add it to STRATA_WEBHOOK_ALLOW"
    )


@pytest.mark.parametrize(
    "url",
    [
        "https://93.184.215.14/hook",
        "http://8.8.8.8:8080/in?x=1",
        "https://[2606:4700:4700::1111]/",
        "http://[2002:808:808::1]/",  # 6to4 of a public address
        "https://hooks.example.com/in",  # resolved if it can be; checked again on connect
    ],
)
def test_public_urls_pass(url):
    assert check_url(url, allow=()) == str(httpx.URL(url))


def test_the_allow_list_takes_hosts_addresses_and_networks():
    assert check_url("http://127.0.0.1:8080/", allow=("127.0.0.1",))
    assert check_url("http://10.2.3.4/", allow=("10.0.0.0/8",))
    assert check_url("http://[::1]:81/", allow=("::1",))
    assert check_url("http://localhost:1234/", allow=("localhost",))
    with pytest.raises(Refused, match=r"192\.168\.1\.1 is a private address"):
        check_url("http://192.168.1.1/", allow=("10.0.0.0/8",))
    with pytest.raises(Refused, match="user name"):  # never: user info
        check_url("http://x@127.0.0.1/", allow=("127.0.0.1",))
    with pytest.raises(Refused, match=r"write the address as 127\.0\.0\.1"):  # nor disguises
        check_url("http://2130706433/", allow=("127.0.0.1",))


# -- connect time ------------------------------------------------------------------------------
@pytest.fixture
def receiver():
    rx = Receiver(lambda req, n: Reply(200, body=b"reached"))
    yield rx
    rx.close()


def test_localhost_is_refused_when_connecting_unless_allowed(receiver):
    url = f"http://localhost:{receiver.port}/hook"
    with guarded_sync_client(allow=(), timeout=5) as client, pytest.raises(Refused):
        client.post(url, content=b"{}")

    async def post(allow):
        async with guarded_client(allow=allow, timeout=5) as client:
            return await client.post(url, content=b"{}")

    with pytest.raises(Refused, match="localhost is an internal name"):
        asyncio.run(post(()))
    assert receiver.requests == []

    assert asyncio.run(post(("localhost",))).text == "reached"
    with guarded_sync_client(allow=("localhost",), timeout=5) as client:
        assert client.post(url, content=b"{}").status_code == 200
    assert [r.headers["host"] for r in receiver.requests] == [f"localhost:{receiver.port}"] * 2


@pytest.fixture
def dns(monkeypatch):
    """Answers for made-up names (the guard resolves through ``socket.getaddrinfo``, as
    asyncio does); every other name resolves as usual."""
    real = socket.getaddrinfo
    answers: dict[str, list[list[str]]] = {}

    def getaddrinfo(host, port, *args, **kwargs):
        name = host.decode() if isinstance(host, bytes) else host
        if name in answers:
            queue = answers[name]
            addresses = queue.pop(0) if len(queue) > 1 else queue[0]
            return [
                (socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "",
                 (a, int(port or 0)))
                for a in addresses
            ]  # fmt: skip
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return answers


def test_a_name_that_resolves_to_loopback_is_refused_when_connecting(receiver, dns):
    dns["hooks.test"] = [["127.0.0.1"]]
    url = f"http://hooks.test:{receiver.port}/hook"
    with pytest.raises(Refused, match=r"hooks.test resolves to a loopback address \(127.0.0.1\)"):
        check_url(url, allow=())

    async def post(allow):
        async with guarded_client(allow=allow, timeout=5) as client:
            return await client.post(url, content=b"{}")

    with pytest.raises(Refused, match=r"hooks\.test resolves to a loopback"):
        asyncio.run(post(()))
    assert receiver.requests == []
    # Allowed, the request goes to the checked address, under the name it was given.
    assert asyncio.run(post(("127.0.0.1",))).text == "reached"
    assert receiver.requests[0].headers["host"] == f"hooks.test:{receiver.port}"


def test_dns_rebinding_is_caught_when_connecting(receiver, dns):
    """Public when saved, loopback when the request goes: the second answer is checked."""
    dns["rebind.test"] = [["93.184.215.14"], ["127.0.0.1"]]
    url = f"http://rebind.test:{receiver.port}/hook"
    assert check_url(url, allow=()) == url
    with guarded_sync_client(allow=(), timeout=5) as client, pytest.raises(Refused) as refused:
        client.post(url, content=b"{}")
    assert "rebind.test resolves to a loopback address (127.0.0.1)" in str(refused.value)
    assert receiver.requests == []


def test_every_address_of_a_name_is_checked(receiver, dns):
    dns["mixed.test"] = [["93.184.215.14", "10.0.0.7"]]
    with (
        guarded_sync_client(allow=(), timeout=5) as client,
        pytest.raises(Refused, match=r"10\.0\.0\.7"),
    ):
        client.get(f"http://mixed.test:{receiver.port}/")


def test_the_sync_client_does_not_follow_redirects():
    rx = Receiver(lambda req, n: Reply(302, {"location": "http://169.254.169.254/"}))
    try:
        with guarded_sync_client(allow=("127.0.0.1",), timeout=5) as client:
            r = client.post(rx.url, content=b"{}")
        assert r.status_code == 302 and len(rx.requests) == 1
    finally:
        rx.close()


def _certificates(name: str) -> tuple[bytes, bytes, bytes]:
    """A test authority's certificate, and a certificate and key it signed for ``name``
    (PEM)."""
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = dt.datetime.now(dt.UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Strata test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    key_pem = key.private_bytes(
        pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return ca.public_bytes(pem), leaf.public_bytes(pem), key_pem


def _tls_receiver(tmp_path, name: str) -> tuple[Receiver, ssl.SSLContext]:
    ca, cert, key = _certificates(name)
    (tmp_path / "cert.pem").write_bytes(cert)
    (tmp_path / "key.pem").write_bytes(key)
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    client = ssl.create_default_context(cadata=ca.decode())
    return Receiver(lambda req, n: Reply(200, body=b"reached"), tls=server), client


@pytest.mark.parametrize(("certified", "reached"), [("hooks.test", True), ("other.test", False)])
def test_tls_verifies_the_name_while_connecting_to_the_checked_address(
    tmp_path, dns, certified, reached
):
    """Connected to 127.0.0.1, the TLS handshake still names hooks.test (SNI) and the
    certificate must be for hooks.test."""
    rx, trust = _tls_receiver(tmp_path, certified)
    dns["hooks.test"] = [["127.0.0.1"]]
    url = f"https://hooks.test:{rx.port}/hook"

    async def post():
        async with guarded_client(allow=("127.0.0.1",), timeout=5, verify=trust) as client:
            return await client.post(url, content=b"{}")

    try:
        if reached:
            assert asyncio.run(post()).text == "reached"
            assert rx.requests[0].headers["host"] == f"hooks.test:{rx.port}"
        else:
            with pytest.raises(httpx.ConnectError, match="certificate verify failed"):
                asyncio.run(post())
            assert rx.requests == []
    finally:
        rx.close()
