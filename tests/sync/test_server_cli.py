"""``gridcollect server-admin`` and ``gridcollect server``: grids, users, tokens, base data."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from sync.server.app import create_app
from sync.server.cli import add_server_commands, main
from tests.factories import id_number, resident
from tests.sync.conftest import Client, start_server

GRID = "330106001001-01"


def write_csv(path: Path, rows: list[dict[str, Any]]) -> Path:
    headers = list(dict.fromkeys(k for row in rows for k in row))
    with path.open("w", newline="", encoding="utf-8-sig") as fh:
        writer = csv.DictWriter(fh, headers)
        writer.writeheader()
        writer.writerows(rows)
    return path


def admin(db_url: str, *args: str) -> int:
    return main(["server-admin", "--db", db_url, *args])


def test_add_server_commands_wires_funcs() -> None:
    import argparse

    parser = argparse.ArgumentParser()
    add_server_commands(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["server", "--db", "sqlite:///x.db", "--port", "9000"])
    assert (args.port, args.host, callable(args.func)) == (9000, "127.0.0.1", True)
    args = parser.parse_args(["server-admin", "add-user", "u", "--role", "worker", "--grid", "g"])
    assert args.grid == ["g"] and callable(args.func)


def test_admin_commands_and_base_data_reach_devices(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = tmp_path / "pw.txt"
    secret.write_text("a long enough password\n", encoding="utf-8")
    assert admin(db_url, "init") == 0
    assert (
        admin(db_url, "add-grid", GRID, "一网格", "--community", "330106001") == 2
    )  # no community
    assert admin(db_url, "add-community", "330106001", "幸福社区") == 0
    assert admin(db_url, "add-grid", GRID, "一网格", "--community", "330106001") == 0
    assert (
        admin(
            db_url,
            "add-user",
            "wang",
            "--role",
            "worker",
            "--grid",
            "nope",
            "--password-file",
            str(secret),
        )
        == 2
    )
    assert (
        admin(
            db_url,
            "add-user",
            "wang",
            "--role",
            "worker",
            "--grid",
            GRID,
            "--password-file",
            str(secret),
        )
        == 0
    )
    capsys.readouterr()
    assert admin(db_url, "list-users") == 0
    assert capsys.readouterr().out.split() == ["wang", "worker", "-", GRID]

    rows = [resident(seq=s, grid=GRID, name=n) for s, n in ((1, "张三"), (3, "李四"))]
    rows.append(resident(seq=5, grid=GRID, name="王五", phone="12"))  # invalid phone: a draft
    mirror = write_csv(tmp_path / "mirror.csv", rows)
    assert main(["server-admin", "--db", db_url, "load-base", "--json", str(mirror)]) == 1
    report = json.loads(capsys.readouterr().out)
    assert (report["rows"], report["created"], report["drafts"]) == (3, 3, 1)
    ((row, problem),) = report["problems"]
    assert (
        row == 4 and "联系方式" in problem and "12" not in problem
    )  # names the field, not the value
    assert main(["server-admin", "--db", db_url, "load-base", "--json", str(mirror)]) == 1
    assert json.loads(capsys.readouterr().out)["unchanged"] == 3  # loading again changes nothing
    changed = write_csv(tmp_path / "mirror2.csv", [{**rows[0], "occupation": "教师"}])
    assert main(["server-admin", "--db", db_url, "load-base", "--json", str(changed)]) == 0
    assert json.loads(capsys.readouterr().out)["merged"] == 1  # known person: updated, not added

    app = create_app(db_url)
    server, thread, url = start_server(app)
    try:
        device = Client(url, "laptop-9")
        assert device.login("wang", "a long enough password").status_code == 200
        pulled, _ = device.pull_all()
        by_number = {r["data"]["id_number"]: r for r in pulled}
        assert set(by_number) == {id_number(seq=s) for s in (1, 3, 5)}
        first = by_number[id_number(seq=1)]
        assert (first["status"], first["data"]["occupation"], first["version"]) == (
            "complete",
            "教师",
            2,
        )
        assert by_number[id_number(seq=5)]["status"] == "draft"
        assert admin(db_url, "revoke-tokens", "wang") == 0
        assert device.push_raw([]).status_code == 401
    finally:
        server.should_exit = True
        thread.join(30)
        app.state.engine.dispose()


def test_load_base_refuses_unusable_files(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["server-admin", "init", "--db", db_url]) == 0  # --db also after the action
    unreachable = "postgresql://nobody@127.0.0.1:1/none"
    assert main(["server-admin", "list-users", "--db", unreachable]) == 2
    assert "--db" in capsys.readouterr().err
    bad = write_csv(tmp_path / "bad.csv", [{"favourite colour": "red"}])
    assert admin(db_url, "load-base", str(bad)) == 2
    assert admin(db_url, "load-base", str(tmp_path / "missing.csv")) == 2
    assert admin(db_url, "load-base", "--form", "spaceship", str(bad)) == 2


def test_server_command_serves(db_url: str) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "sync.server.cli", "server", "--db", db_url, "--port", str(port)]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=Path(__file__).parents[2]
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                info = requests.get(f"http://127.0.0.1:{port}/v1/info", timeout=2).json()
                break
            except requests.ConnectionError:
                assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
                assert time.monotonic() < deadline
                time.sleep(0.2)
        assert info["protocol_versions"] == [1]
    finally:
        proc.terminate()
        proc.wait(30)


def test_server_command_settles_the_heap_before_serving(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The app's long-lived objects are frozen out of the cyclic collector before uvicorn
    serves (sync/server/heap.py: ~18 % of a push's server CPU went to rescanning them)."""
    import gc

    import uvicorn

    seen: dict[str, Any] = {}

    def fake_run(app: Any, **_kwargs: Any) -> None:
        seen["frozen"] = gc.get_freeze_count()
        seen["threshold"] = gc.get_threshold()

    monkeypatch.setattr(uvicorn, "run", fake_run)
    before = gc.get_threshold()
    try:
        assert main(["server", "--db", db_url, "--port", "1"]) == 0
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
    assert seen["frozen"] > 10_000  # the loaded app, not a handful of objects
    assert seen["threshold"][0] >= 10_000


_LOGS_PROBE = """
import logging, logging.config, sys
import uvicorn
from sync.server.cli import main

def fake_run(app, **kwargs):
    if kwargs.get("log_config") is not None:  # what uvicorn does with it
        logging.config.dictConfig(kwargs["log_config"])
    logging.getLogger("sync.server.service").info("push chunk retried (probe)")
    logging.getLogger("sync.server.numbering").warning("reaped (probe)")

uvicorn.run = fake_run
sys.exit(main(["server", "--db", sys.argv[1], "--port", "1"]))
"""


def test_the_server_logs_the_platforms_own_lines(db_url: str) -> None:
    """``gridcollect server`` prints the platform's INFO lines (a push run again after a race)
    and its warnings in uvicorn's format; before, INFO lines were dropped and warnings bare."""
    done = subprocess.run(
        [sys.executable, "-c", _LOGS_PROBE, db_url],
        capture_output=True,
        text=True,
        cwd=Path(__file__).parents[2],
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert any(line.startswith("INFO:") and "push chunk retried (probe)" in line for line in lines)
    assert any(line.startswith("WARNING:") and "reaped (probe)" in line for line in lines)


def _admin_process(
    *args: str, lang_env: str | None, entry: str = "sync.server.cli"
) -> subprocess.CompletedProcess[str]:
    """``server-admin`` run as a person runs it, with ``GRIDCOLLECT_LANG`` set or unset."""
    env = {k: v for k, v in os.environ.items() if k != "GRIDCOLLECT_LANG"}
    if lang_env is not None:
        env["GRIDCOLLECT_LANG"] = lang_env
    return subprocess.run(
        [sys.executable, "-m", entry, *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=Path(__file__).parents[2],
        timeout=120,
    )


@pytest.mark.parametrize("entry", ["sync.server.cli", "app"])
def test_server_admin_speaks_the_language_of_gridcollect_lang(entry: str, tmp_path: Path) -> None:
    """``server-admin`` answered in Chinese whatever ``GRIDCOLLECT_LANG`` said (only
    ``--lang`` worked), while ``gridcollect``'s own commands honour it."""
    db = f"sqlite:///{tmp_path / 'nowhere' / 'platform.db'}"  # a directory that is not there
    command = ("server-admin", "--db", db, "list-users")

    english = _admin_process(*command, lang_env="en_US", entry=entry)
    assert english.returncode == 2
    assert "does not exist; check the --db path" in english.stderr, english.stderr

    chinese = _admin_process(*command, lang_env=None, entry=entry)
    assert chinese.returncode == 2 and "所在的目录不存在" in chinese.stderr, chinese.stderr

    told = _admin_process("--lang", "zh", *command, lang_env="en", entry=entry)  # --lang wins
    assert told.returncode == 2 and "所在的目录不存在" in told.stderr, told.stderr
