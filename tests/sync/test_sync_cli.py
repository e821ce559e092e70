"""``gridcollect sync`` with the real server: exit codes, --json, the lock, logs without secrets."""

from __future__ import annotations

import argparse
import json
import socket
from pathlib import Path
from typing import Any

import pytest

from app.core.store import Store
from sync.cli import add_sync_commands
from sync.lock import SyncLock
from sync.server import admin
from tests.factories import id_number, resident
from tests.sync import devicekit
from tests.sync.devicekit import (
    GRID_A,
    PASSWORD,
)

db_url = devicekit.db_url  # fixture
devices = devicekit.devices  # fixture

SECRET = "Pw-7f3e9c-秘密-never-logged"


def run(
    argv: list[str], data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> tuple[int, str, str]:
    """Parse like ``gridcollect --data-dir D sync ...`` and run the command."""
    parser = argparse.ArgumentParser(prog="gridcollect")
    parser.add_argument("--data-dir")
    parser.add_argument("--lang", choices=["zh", "en"])
    add_sync_commands(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["--data-dir", str(data_dir), *argv])
    code = args.func(args)
    out, err = capsys.readouterr()
    return code, out, err


def password_file(tmp_path: Path, password: str = PASSWORD) -> Path:
    path = tmp_path / "password.txt"
    path.write_text(password + "\n", encoding="utf-8")
    path.chmod(0o600)  # anything looser is refused (test_transport.py)
    return path


def sync_args(url: str, pw: Path, *extra: str, user: str = "wang") -> list[str]:
    return ["sync", "--server", url, "--user", user, "--password-file", str(pw), *extra]


def test_done_is_exit_0_with_a_json_summary(platform: Any, tmp_path: Path, capsys: Any) -> None:
    data = tmp_path / "dev"
    store = Store.open(data)
    record = store.save("resident", resident(seq=201))
    store.close()
    code, out, err = run(sync_args(platform.url, password_file(tmp_path), "--json"), data, capsys)
    assert code == 0, err
    summary = json.loads(out)
    assert summary["ok"] is True and summary["exit_code"] == 0
    assert summary["pushed"] == 1 and summary["applied"] == 1 and summary["pulled"] == 1
    store = Store.open(data)
    try:
        assert store.meta("last_sync") and not store.get(record.id).dirty
    finally:
        store.close()
    code, out, _err = run(
        sync_args(platform.url, password_file(tmp_path), "--batch", "10"), data, capsys
    )
    assert code == 0 and out.startswith("同步完成")


def test_conflicts_waiting_are_exit_3(
    platform: Any, devices: Any, tmp_path: Path, capsys: Any
) -> None:
    (other,) = devices(1)
    record = other.save("resident", resident(seq=203, phone="13000000000"))
    other.sync()
    data = tmp_path / "dev"
    pw = password_file(tmp_path)
    assert run(sync_args(platform.url, pw), data, capsys)[0] == 0
    other.edit(record.id, phone="13111111111")
    other.sync()
    store = Store.open(data)
    got = store.get(record.id)
    store.save("resident", {**got.data, "phone": "13222222222"}, record_id=record.id)
    store.close()
    code, out, err = run(sync_args(platform.url, pw, "--json"), data, capsys)
    assert code == 3
    assert json.loads(out)["open_conflicts"] == 1 and json.loads(out)["exit_code"] == 3
    assert err.strip().count("\n") == 0 and "冲突" in err


def test_wrong_password_is_exit_4(platform: Any, tmp_path: Path, capsys: Any) -> None:
    code, out, err = run(
        sync_args(platform.url, password_file(tmp_path, "wrong-password")), tmp_path / "d", capsys
    )
    assert code == 4 and out == ""
    assert len(err.strip().splitlines()) == 1


def test_unreachable_server_is_exit_5(tmp_path: Path, capsys: Any) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    argv = sync_args(
        f"http://127.0.0.1:{port}", password_file(tmp_path), "--retries", "1", "--json"
    )
    code, out, err = run(argv, tmp_path / "d", capsys)
    assert code == 5
    assert json.loads(out) == {
        "ok": False,
        "exit_code": 5,
        "error": "network",
        "message_zh": json.loads(out)["message_zh"],
        "message_en": json.loads(out)["message_en"],
    }
    assert len(err.strip().splitlines()) == 1


def test_another_sync_running_is_exit_6(platform: Any, tmp_path: Path, capsys: Any) -> None:
    data = tmp_path / "dev"
    data.mkdir()
    with SyncLock(data):
        code, _out, err = run(sync_args(platform.url, password_file(tmp_path)), data, capsys)
    assert code == 6 and "另一个同步" in err
    assert run(sync_args(platform.url, password_file(tmp_path)), data, capsys)[0] == 0


def test_a_server_that_is_not_the_platform_is_exit_7(
    platform: Any, tmp_path: Path, capsys: Any
) -> None:
    argv = ["--lang", "en", *sync_args(platform.url + "/not-here", password_file(tmp_path))]
    code, _out, err = run(argv, tmp_path / "d", capsys)
    assert code == 7 and len(err.strip().splitlines()) == 1 and err.isascii()


def test_unreadable_password_file_is_exit_2(tmp_path: Path, capsys: Any) -> None:
    code, _out, err = run(
        sync_args("http://127.0.0.1:9", tmp_path / "missing.txt"), tmp_path / "d", capsys
    )
    assert code == 2 and "密码文件" in err


def test_help_documents_the_exit_codes(capsys: Any) -> None:
    with pytest.raises(SystemExit) as caught:
        run(["sync", "--help"], Path("."), capsys)
    assert caught.value.code == 0
    text = capsys.readouterr().out
    for line in (
        "0  done",
        "3  done, conflicts",
        "4  login failed",
        "5  server unreachable",
        "6  another sync",
        "7  the server refused",
        "--password-file",
    ):
        assert line in text


def test_the_password_never_reaches_logs_or_output(
    platform: Any, tmp_path: Path, capsys: Any
) -> None:
    admin.put_user(platform.engine, "sun", SECRET, "worker", grids=[GRID_A])
    data = tmp_path / "dev"
    store = Store.open(data)
    store.save("resident", resident(seq=205))
    store.close()
    seen: list[str] = []
    # the wrong password first: once signed in, a device uses its credential, not the file
    for password, expected in ((SECRET + "x", 4), (SECRET, 0)):
        code, out, err = run(
            sync_args(platform.url, password_file(tmp_path, password), user="sun"), data, capsys
        )
        assert code == expected
        seen += [out, err]
    logs = sorted((data / "logs").glob("*.log"))
    assert logs, "the sync writes a log in the data dir"
    text = "".join(p.read_text(encoding="utf-8") for p in logs)
    assert "sync started" in text and "sync done" in text
    for blob in (text, *seen):
        assert SECRET not in blob and SECRET[:12] not in blob
        assert id_number(seq=205) not in blob and "张三" not in blob  # no personal data either


def test_copied_data_dir_says_it_became_a_new_device(
    platform: Any, tmp_path: Path, capsys: Any
) -> None:
    """The office shortcut from the command line: a synced data dir copied to a second
    laptop; the copy's first sync registers it as a new device, sends what was typed on it,
    and says so in the chosen language."""
    import shutil

    from sync.replica.identity import NOTICE

    pw = password_file(tmp_path)
    first = tmp_path / "first"
    store = Store.open(first)
    store.close()
    assert run(sync_args(platform.url, pw), first, capsys)[0] == 0
    copy = tmp_path / "copy"
    shutil.copytree(first, copy)
    store = Store.open(copy)
    typed = store.save("resident", resident(seq=207))
    store.close()
    code, out, err = run(sync_args(platform.url, pw, "--json"), copy, capsys)
    assert code == 0, err
    summary = json.loads(out)
    assert summary["new_device"] is True and summary["applied"] == 1
    store = Store.open(copy)
    try:
        assert not store.get(typed.id).dirty
    finally:
        store.close()
    code, out, _err = run(["--lang", "en", *sync_args(platform.url, pw)], first, capsys)
    assert code == 0 and NOTICE[1] not in out  # the original stays what it was
    store = Store.open(copy)
    store.save("resident", resident(seq=209))
    store.close()
    shutil.rmtree(first)
    shutil.copytree(copy, first)  # and a copy of the copy, in Chinese
    code, out, _err = run(sync_args(platform.url, pw), first, capsys)
    assert code == 0 and out.startswith("同步完成") and NOTICE[0] in out


def test_sync_settles_the_heap_before_the_session(
    platform: Any, tmp_path: Path, capsys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``gridcollect sync`` freezes what it loaded out of the cyclic collector before the
    session runs (sync/heap.py: a quarter of a 10 k push's client CPU went to rescanning it)."""
    import gc

    from sync.session import SyncSession

    frozen: list[int] = []
    real_run = SyncSession.run

    def run_session(self: SyncSession) -> Any:
        frozen.append(gc.get_freeze_count())
        return real_run(self)

    monkeypatch.setattr(SyncSession, "run", run_session)
    threshold = gc.get_threshold()
    try:
        code, _out, err = run(sync_args(platform.url, password_file(tmp_path)), tmp_path, capsys)
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)
    assert code == 0, err
    assert frozen and frozen[0] > 10_000
