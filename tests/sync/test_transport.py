"""Issue 15: transport. ``gridcollect server --certfile/--keyfile`` serves TLS itself (a real
server process, a self-signed certificate made here with ``cryptography``), ``gridcollect sync``
trusts it through ``--cafile`` or ``REQUESTS_CA_BUNDLE`` and refuses what is not safe: plain
http to another machine without ``--insecure``, a password file others may read or write."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from app.core.store import Store
from sync import transport
from sync.server import db
from tests.factories import resident
from tests.sync.conftest import seed
from tests.sync.test_sync_cli import password_file, run, sync_args

ROOT = Path(__file__).parents[2]


def self_signed(
    folder: Path, names: Sequence[str] = ("localhost", "127.0.0.1"), days: float = 1
) -> tuple[Path, Path]:
    """A certificate for ``names`` (host names or IP addresses), and its key (PEM files),
    valid until ``days`` from now (negative: expired)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "gridcollect test")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(
            now - dt.timedelta(minutes=5) + min(dt.timedelta(days=days), dt.timedelta())
        )
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(
            x509.SubjectAlternativeName([_alt_name(n) for n in names]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
    return cert_path, key_path


def _alt_name(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """``gridcollect server --certfile --keyfile`` in its own process: (https URL, CA file)."""
    url = f"sqlite:///{tmp_path / 'platform.db'}"
    engine = db.make_engine(url)
    db.init_db(engine)
    seed(engine)
    engine.dispose()
    cert, key = self_signed(tmp_path)
    port = free_port()
    cmd = [sys.executable, "-m", "sync.server.cli", "server", "--db", url, "--port", str(port)]
    cmd += ["--certfile", str(cert), "--keyfile", str(key)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=ROOT, env=env
    )
    base = f"https://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                requests.get(f"{base}/v1/info", timeout=2, verify=str(cert))
                break
            except requests.ConnectionError:
                assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
                assert time.monotonic() < deadline
                time.sleep(0.3)
        yield base, cert
    finally:
        proc.terminate()  # uvicorn finishes open connections first; then it must go
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(30)


def test_sync_over_tls_end_to_end(
    tls_server: tuple[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url, cert = tls_server
    port = url.rsplit(":", 1)[1]
    # Plain http to the TLS port gets no answer the client could use.
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{port}/v1/info", timeout=5)
    data = tmp_path / "dev"
    store = Store.open(data)
    record = store.save("resident", resident(seq=301))
    store.close()
    pw = password_file(tmp_path)
    # A certificate nobody vouches for: refused, nothing sent; a person must give --cafile.
    code, _out, err = run(sync_args(url, pw, "--retries", "1"), data, capsys)
    assert code == 2 and "--cafile" in err, err
    code, out, err = run(sync_args(url, pw, "--cafile", str(cert), "--json"), data, capsys)
    assert code == 0, err
    assert '"pushed": 1' in out or '"pushed":1' in out.replace(" ", "")
    # The standard variable works too.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert))
    code, _out, err = run(sync_args(url, pw), data, capsys)
    assert code == 0, err
    info = requests.get(f"{url}/v1/records/{record.id}", verify=str(cert), timeout=10)
    assert info.status_code == 401  # served, over TLS (and needs a login, as over http)


@pytest.mark.parametrize(
    "url",
    ["http://192.168.1.20:8765", "http://grid.example.cn", "http://[2001:db8::1]:8765"],
)
def test_sync_refuses_plain_http_to_another_machine(
    url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(sync_args(url, password_file(tmp_path), "--json"), tmp_path / "d", capsys)
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and "--insecure" in err and "https://" in err
    assert '"error": "insecure_url"' in out
    assert not (tmp_path / "d").exists()  # refused before the data dir was even opened


def test_insecure_allows_plain_http_to_another_machine(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Port 9 on a test-net address: the refusal is gone, the network error comes instead.
    argv = sync_args("http://127.0.0.1:9", password_file(tmp_path), "--retries", "1")
    assert transport.url_problem("http://192.0.2.1:9", insecure=True) is None
    assert run(argv, tmp_path / "d", capsys)[0] == 5  # loopback http needs no --insecure


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o620, 0o602, 0o666], ids=oct)
def test_sync_refuses_a_password_file_others_may_read_or_write(
    mode: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if os.name != "posix":
        pytest.skip("file modes are POSIX")
    pw = password_file(tmp_path)
    pw.chmod(mode)
    code, _out, err = run(sync_args("http://127.0.0.1:9", pw), tmp_path / "d", capsys)
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and "chmod 600" in err and "密码文件" in err
    argv = ["--lang", "en", *sync_args("http://127.0.0.1:9", pw)]
    code, _out, err = run(argv, tmp_path / "d", capsys)
    assert code == 2 and "other users" in err


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.9.1", True),
        ("::1", True),
        ("localhost", True),
        ("10.0.0.1", False),
        ("example.cn", False),
        ("localhost.example.cn", False),
    ],
)
def test_loopback_is_recognised(host: str, loopback: bool) -> None:
    assert transport.is_loopback(host) is loopback


def test_server_refuses_half_a_tls_pair(tmp_path: Path, capsys: Any) -> None:
    from sync.server.cli import main

    cert, _key = self_signed(tmp_path)
    url = f"sqlite:///{tmp_path / 'p.db'}"
    assert main(["server", "--db", url, "--certfile", str(cert)]) == 2
    assert "--keyfile" in capsys.readouterr().err


def test_a_locked_account_is_a_quick_login_failure_for_the_nightly_sync(
    platform: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: Any
) -> None:
    """A nightly sync meeting a lockout says so in one line (exit 4), without waiting it out."""
    from sync import client as client_module
    from tests.sync.test_login_throttle import attack, frozen

    waits: list[float | None] = []
    monkeypatch.setattr(
        client_module.Retry, "delay", lambda _self, _n, after=None: waits.append(after) or 0.0
    )
    attack(platform, frozen(platform), "wang", 30)  # waits out the delays: locked
    code, _out, err = run(sync_args(platform.url, password_file(tmp_path)), tmp_path / "d", capsys)
    assert code == 4 and len(err.strip().splitlines()) == 1 and "秒后再试" in err
    assert waits == []  # a lockout of minutes is not retried
