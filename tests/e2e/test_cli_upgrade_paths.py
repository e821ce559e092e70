"""``server-admin upgrade`` on a mistyped ``--db`` path, through the real ``gridcollect``
command in a subprocess: a check never creates a database, and a directory that is not there
is one line naming the path, not a traceback."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.test_cli import gridcollect


def _lines(text: str) -> list[str]:
    return text.strip().splitlines()


def test_a_check_on_a_mistyped_path_creates_nothing_and_exits_2_not_pending(
    tmp_path: Path,
) -> None:
    work = tmp_path / "office"
    work.mkdir()
    (work / "platform.db").write_bytes(b"")  # the office's real file is beside the typo
    typo = work / "platfrom.db"
    for lang, words in (("zh", "找不到数据库文件"), ("en", "no database file")):
        result = gridcollect(
            tmp_path / "d",
            "--lang",
            lang,
            "server-admin",
            "--db",
            f"sqlite:///{typo}",
            "upgrade",
            "--check",
        )
        assert result.returncode == 2, result.stdout + result.stderr
        assert len(_lines(result.stderr)) == 1 and str(typo) in result.stderr
        assert words in result.stderr and result.stdout == ""
    assert sorted(p.name for p in work.iterdir()) == ["platform.db"]


def test_a_relative_mistyped_path_is_named_where_it_was_looked_for(tmp_path: Path) -> None:
    """``sqlite:///platfrom.db`` is relative to the current directory: the line says which."""
    result = gridcollect(
        tmp_path / "d", "server-admin", "--db", "sqlite:///platfrom.db", "upgrade", "--check"
    )
    assert result.returncode == 2
    assert str(tmp_path / "platfrom.db") in result.stderr
    assert not (tmp_path / "platfrom.db").exists()


def test_an_upgrade_or_check_in_a_missing_directory_is_one_line_naming_it(
    tmp_path: Path,
) -> None:
    target = tmp_path / "no-such-dir" / "platform.db"
    for extra in ((), ("--check",)):
        result = gridcollect(
            tmp_path / "d",
            "--lang",
            "en",
            "server-admin",
            "--db",
            f"sqlite:///{target}",
            "upgrade",
            *extra,
        )
        assert result.returncode == 2, result.stdout + result.stderr
        assert len(_lines(result.stderr)) == 1 and "Traceback" not in result.stderr
        assert str(target) in result.stderr
    assert not target.parent.exists()


def test_a_check_on_an_existing_database_still_says_pending_or_current(tmp_path: Path) -> None:
    db = tmp_path / "platform.db"
    url = f"sqlite:///{db}"
    db.write_bytes(b"")  # an empty file: every revision pending
    pending = gridcollect(tmp_path / "d", "server-admin", "--db", url, "upgrade", "--check")
    assert pending.returncode == 1, pending.stderr
    assert gridcollect(tmp_path / "d", "server-admin", "--db", url, "upgrade").returncode == 0
    current = gridcollect(tmp_path / "d", "server-admin", "--db", url, "upgrade", "--check")
    assert current.returncode == 0, current.stderr


def test_a_db_argument_that_is_no_url_is_still_one_line(tmp_path: Path) -> None:
    result = gridcollect(
        tmp_path / "d", "server-admin", "--db", "platform.db", "upgrade", "--check"
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert len(_lines(result.stderr)) == 1 and "--db" in result.stderr
