"""Issue 15: accounts on the real server — a password reset ends every login, users can be
disabled and enabled from the command line, passwords have a minimum strength, and the token
lifetime is configurable."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import requests

from sync.server import passwords
from sync.server.cli import main
from sync.server.console import audit
from tests.sync.conftest import PASSWORD, Client, Platform, start_server
from tests.sync.consolekit import login

NEW_PASSWORD = "a new passphrase 2"


def admin(db_url: str, *args: str) -> int:
    return main(["server-admin", "--db", db_url, *args])


def pull_status(client: Client) -> int:
    resp = client.http.get(
        f"{client.url}/v1/pull", params={"since": 0}, headers=client.headers, timeout=30
    )
    return resp.status_code


def write_password(tmp_path: Path, text: str) -> str:
    path = tmp_path / "pw.txt"
    path.write_text(text + "\n", encoding="utf-8")
    path.chmod(0o600)
    return str(path)


def test_resetting_a_password_with_add_user_revokes_every_token(
    platform: Platform, db_url: str, tmp_path: Path
) -> None:
    laptop, phone = platform.client("wang"), platform.client("wang")
    browser = login(platform, "wang")
    assert pull_status(laptop) == pull_status(phone) == 200
    pw = write_password(tmp_path, NEW_PASSWORD)
    grid = laptop.user["grids"][0]
    assert (
        admin(db_url, "add-user", "wang", "--role", "worker", "--grid", grid, "--password-file", pw)
        == 0
    )
    assert pull_status(laptop) == pull_status(phone) == 401
    assert browser.get("/console/overview", allow_redirects=False).status_code == 303  # to login
    assert laptop.login("wang", PASSWORD).status_code == 401
    assert laptop.login("wang", NEW_PASSWORD).status_code == 200


def test_the_console_reset_revokes_and_refuses_a_weak_password(platform: Platform) -> None:
    worker = platform.client("li")
    chief = login(platform, "chen")
    weak = chief.post("/console/people/li/password", {"password": "12345678"})
    assert weak.status_code == 303 and "err=weak_password" in weak.headers["location"]
    assert pull_status(worker) == 200  # nothing changed
    page = chief.get(weak.headers["location"])
    assert passwords.MESSAGE[0] in page.text
    done = chief.post("/console/people/li/password", {"password": NEW_PASSWORD})
    assert "ok=done" in done.headers["location"]
    assert pull_status(worker) == 401


def test_disable_and_enable_user_from_the_command_line(
    platform: Platform, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    worker = platform.client("zhao")
    assert admin(db_url, "disable-user", "zhao") == 0
    assert "zhao" in capsys.readouterr().out
    assert pull_status(worker) == 401
    assert worker.login("zhao", PASSWORD).status_code == 401
    assert admin(db_url, "enable-user", "zhao") == 0
    assert worker.login("zhao", PASSWORD).status_code == 200
    assert pull_status(worker) == 200
    assert admin(db_url, "disable-user", "nobody") == 2
    assert "nobody" in capsys.readouterr().err
    rows = [(r["username"], r["action"], r["target"]) for r in audit.rows(platform.engine)]
    assert ("server-admin", "disable_user", "zhao") in rows
    assert ("server-admin", "enable_user", "zhao") in rows


@pytest.mark.parametrize(
    "weak",
    [
        "short1!",
        "onlyletterslong",
        "12345678901234",
        "password123",
        "xx-wang-2024-xx",
        "aaaa1111aaaa",
    ],
)
def test_add_user_refuses_a_weak_password_with_a_clear_message(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], weak: str
) -> None:
    assert (
        admin(
            db_url,
            "add-user",
            "wang",
            "--role",
            "admin",
            "--password-file",
            write_password(tmp_path, weak),
        )
        == 2
    )
    err = capsys.readouterr().err
    assert "密码强度不足" in err and str(passwords.MIN_LENGTH) in err
    assert (
        main(
            [
                "--lang",
                "en",
                "server-admin",
                "--db",
                db_url,
                "add-user",
                "wang",
                "--role",
                "admin",
                "--password-file",
                write_password(tmp_path, weak),
            ]
        )
        == 2
    )
    assert "too weak" in capsys.readouterr().err
    assert admin(db_url, "list-users") == 0
    assert "wang" not in capsys.readouterr().out  # nothing stored


@pytest.mark.parametrize("good", [PASSWORD, "Zhang-2024-safe", "网格员口令2024年"])
def test_passphrases_and_mixed_passwords_pass(good: str) -> None:
    assert passwords.is_strong(good, "wang")


def test_token_lifetime_is_configurable(db_url: str, formset: object) -> None:
    from sync.server.app import create_app
    from tests.sync.conftest import seed

    app = create_app(db_url, forms=formset, secret="s", token_days=2)  # type: ignore[arg-type]
    seed(app.state.engine)
    server, thread, url = start_server(app)
    try:
        resp = requests.post(
            f"{url}/v1/login",
            json={"username": "wang", "password": PASSWORD, "device_id": "d1"},
            timeout=30,
        )
        expires = dt.datetime.fromisoformat(resp.json()["expires_at"].replace("Z", "+00:00"))
        left = expires - dt.datetime.now(dt.UTC)
        assert dt.timedelta(days=1, hours=23) < left <= dt.timedelta(days=2)
    finally:
        server.should_exit = True
        thread.join(30)
        app.state.engine.dispose()


@pytest.mark.parametrize("days", ["0", "366", "x"])
def test_token_days_out_of_range_is_refused(days: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["server", "--token-days", days])
    assert info.value.code == 2
    assert "1 到 365" in capsys.readouterr().err


def test_reset_password_keeps_the_scope_and_ends_every_login(
    platform: Platform, db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    worker = platform.client("li")
    grids = worker.user["grids"]
    assert (
        admin(db_url, "reset-password", "li", "--password-file", write_password(tmp_path, "123"))
        == 2
    )
    assert "密码强度不足" in capsys.readouterr().err
    assert pull_status(worker) == 200  # a refused reset changes nothing
    pw = write_password(tmp_path, NEW_PASSWORD)
    assert admin(db_url, "reset-password", "li", "--password-file", pw) == 0
    assert "1" in capsys.readouterr().out
    assert pull_status(worker) == 401
    assert worker.login("li", NEW_PASSWORD).status_code == 200
    assert worker.user["grids"] == grids and worker.user["role"] == "worker"
    assert admin(db_url, "reset-password", "nobody", "--password-file", pw) == 2
    rows = [(r["username"], r["action"], r["target"]) for r in audit.rows(platform.engine)]
    assert ("server-admin", "reset_password", "li") in rows
