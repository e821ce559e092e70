"""Encryption at rest on the device: real store files, real key files, real permissions.

A cheap scrypt cost keeps these fast; the key file records its own parameters, so the code
under test is the same as with the default cost.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path

import pytest

from app.core.forms import FormSet
from app.core.store import Store, driver
from app.core.vault import access, keyfile, keys, sources
from app.core.vault.sources import PassphraseError
from tests import keyringkit
from tests.factories import id_number, resident

FAST = {"n": 2**12, "r": 8, "p": 1}
PASS = "correct horse battery staple"


@pytest.fixture(autouse=True)
def _fresh_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    """No key unlocked by an earlier test, and no passphrase from the environment."""
    keys.forget()
    monkeypatch.delenv(sources.ENV_VAR, raising=False)
    monkeypatch.setattr(keyfile, "DEFAULT_KDF", FAST)


def _passfile(tmp_path: Path, text: str, name: str = "pass") -> Path:
    path = tmp_path / name
    path.write_text(text + "\n", encoding="utf-8")
    path.chmod(0o600)
    return path


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _plain_store(db: Path, formset: FormSet, n: int) -> list[str]:
    store = Store(db, formset)
    ids = [store.save("resident", resident(seq=100 + i)).id for i in range(n)]
    store.close()
    assert driver.is_plaintext(db)
    return ids


def test_a_new_data_dir_is_encrypted_private_and_unreadable_without_its_key(
    tmp_path: Path, formset: FormSet
) -> None:
    data = tmp_path / "data"
    store = Store.open(data, formset, passphrase_file=_passfile(tmp_path, PASS))
    store.save("resident", resident(seq=7, name="欧阳娜娜"))
    store.close()
    db = data / "gridcollect.sqlite"
    raw = b"".join(p.read_bytes() for p in data.iterdir() if p.is_file())
    assert "欧阳娜娜".encode() not in raw and id_number(seq=7).encode() not in raw
    assert driver.is_encrypted(db) and not driver.is_plaintext(db)
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    for path in data.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    keys.forget()
    with pytest.raises(PassphraseError) as locked:
        Store(db, formset)
    assert locked.value.key == "needed"
    with pytest.raises(driver.DatabaseError):  # without the key file's key: not a database
        driver.connect(db, None).execute("SELECT count(*) FROM records").fetchone()


def test_a_wrong_passphrase_is_refused_and_the_right_one_opens(
    tmp_path: Path, formset: FormSet
) -> None:
    data = tmp_path / "data"
    Store.open(data, formset, passphrase_file=_passfile(tmp_path, PASS)).close()
    keys.forget()
    with pytest.raises(PassphraseError) as wrong:
        Store.open(data, formset, passphrase_file=_passfile(tmp_path, PASS + "!", "bad"))
    assert wrong.value.key == "wrong_file"
    assert "口令不正确" in wrong.value.text("zh") and "wrong passphrase" in wrong.value.text("en")
    Store.open(data, formset, passphrase_file=_passfile(tmp_path, PASS)).close()


def test_changing_the_passphrase_rewraps_the_key_and_leaves_the_store_untouched(
    tmp_path: Path, formset: FormSet
) -> None:
    data = tmp_path / "data"
    store = Store.open(data, formset, passphrase_file=_passfile(tmp_path, PASS))
    record = store.save("resident", resident(seq=9))
    store.close()
    db = data / "gridcollect.sqlite"
    before = _digest(db)
    keys.change_passphrase(db, PASS, "a brand new passphrase")
    assert _digest(db) == before  # not re-encrypted
    keys.forget()
    with pytest.raises(keyfile.WrongPassphrase):
        keys.unlock(db, PASS)
    keys.unlock(db, "a brand new passphrase")
    store = Store(db, formset)
    assert store.get(record.id) is not None
    store.close()
    assert stat.S_IMODE(keys.key_path(db).stat().st_mode) == 0o600


def test_a_plaintext_store_is_encrypted_in_place_with_every_record(
    tmp_path: Path, formset: FormSet
) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    db = data / "gridcollect.sqlite"
    ids = _plain_store(db, formset, 30)
    db.chmod(0o644)
    store = Store.open(data, formset, passphrase_file=_passfile(tmp_path, PASS))
    assert sorted(r.id for r in store.iter_records("resident")) == sorted(ids)
    assert store.search("张三")  # FTS (trigram) works on the encrypted copy
    store.close()
    assert driver.is_encrypted(db)
    assert sorted(p.name for p in data.iterdir()) == ["gridcollect.key", "gridcollect.sqlite"]
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    assert stat.S_IMODE(db.stat().st_mode) == 0o600


def test_a_killed_migrations_leftovers_are_discarded_and_it_resumes(
    tmp_path: Path, formset: FormSet
) -> None:
    """A key file written but the store still plaintext, with a half-written copy beside it:
    what a kill between the key file and the rename leaves."""
    data = tmp_path / "data"
    data.mkdir()
    db = data / "gridcollect.sqlite"
    ids = _plain_store(db, formset, 5)
    keys.setup(db, PASS)
    (data / "gridcollect.sqlite.encrypting").write_bytes(os.urandom(5000))
    keys.forget()
    store = Store.open(data, formset, passphrase_file=_passfile(tmp_path, PASS))
    assert sorted(r.id for r in store.iter_records("resident")) == sorted(ids)
    store.close()
    assert not (data / "gridcollect.sqlite.encrypting").exists()


def test_sqlite_utils_and_the_stores_features_work_on_the_encrypted_store(
    tmp_path: Path, formset: FormSet
) -> None:
    data = tmp_path / "data"
    store = Store.open(data, formset, passphrase_file=_passfile(tmp_path, PASS))
    store.save("resident", resident(seq=11, name="司马光"))
    assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store.conn.execute("PRAGMA cipher_version").fetchone()[0].startswith("4.")
    assert "records" in store.db.table_names()  # sqlite-utils over the keyed connection
    assert [s.title for s in store.search("司马光")]
    assert store.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    store.close()


def test_a_passphrase_file_others_can_read_or_write_is_refused(tmp_path: Path) -> None:
    loose = _passfile(tmp_path, PASS)
    for mode in (0o644, 0o620, 0o604):
        loose.chmod(mode)
        with pytest.raises(PassphraseError) as refused:
            sources.read_file(loose)
        assert refused.value.key == "file_open_to_others"
        assert "chmod 600" in refused.value.text("zh") and "chmod 600" in refused.value.text("en")


def test_a_new_passphrase_must_be_long_enough(tmp_path: Path, formset: FormSet) -> None:
    with pytest.raises(PassphraseError) as short:
        Store.open(tmp_path / "d", formset, passphrase_file=_passfile(tmp_path, "short"))
    assert short.value.key == "too_short"
    assert not (tmp_path / "d" / "gridcollect.key").exists()
    assert [sources.strength(p) for p in ("abc", "abcdefgh", "Abcdefgh12!x", "a" * 16)] == [
        "weak",
        "weak",
        "good",
        "good",
    ]


def test_the_keyring_unlocks_without_the_passphrase_until_turned_off(
    tmp_path: Path, formset: FormSet
) -> None:
    keyringkit.use(tmp_path / "keyring.json")
    data = tmp_path / "data"
    store = Store.open(data, formset, passphrase_file=_passfile(tmp_path, PASS))
    store.save("resident", resident(seq=13))
    store.close()
    db = data / "gridcollect.sqlite"
    keys.keyring_enable(db, PASS)
    assert PASS not in (tmp_path / "keyring.json").read_text(encoding="utf-8")
    keys.forget()
    store = Store.open(data, formset)  # no passphrase from anywhere: the keyring opens it
    assert store.count() == 1
    store.close()
    keys.keyring_disable(db)
    keys.forget()
    with pytest.raises(PassphraseError):
        Store.open(data, formset)


def test_the_demo_gets_its_own_passphrase_file_and_says_so(
    tmp_path: Path, formset: FormSet
) -> None:
    data = tmp_path / "demo"
    told: list[Path] = []
    Store.open(data, formset, demo_notice=told.append).close()
    assert told == [data / sources.DEMO_FILE]
    assert stat.S_IMODE(told[0].stat().st_mode) == 0o600
    keys.forget()
    Store.open(data, formset).close()  # the demo dir opens from its file, as ./dev run needs
    keys.forget()
    assert access.open_key(data / "gridcollect.sqlite")


def test_two_openers_migrating_at_once_encrypt_once_and_lose_nothing(
    tmp_path: Path, formset: FormSet
) -> None:
    """The app and a scheduled sync start together on an old plaintext data dir."""
    import threading

    from app.core.vault import encrypt

    db = tmp_path / "gridcollect.sqlite"
    ids = _plain_store(db, formset, 300)
    key = keys.setup(db, PASS)
    results: list[bool] = []
    barrier = threading.Barrier(2)

    def migrate() -> None:
        barrier.wait()
        results.append(encrypt.encrypt_in_place(db, key))

    threads = [threading.Thread(target=migrate) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [False, True]
    store = Store(db, formset)
    assert sorted(r.id for r in store.iter_records("resident")) == sorted(ids)
    store.close()


def test_only_gridcollects_own_files_are_made_private(tmp_path: Path, formset: FormSet) -> None:
    """A data dir that is also an ordinary folder: other files keep their modes."""
    data = tmp_path / "folder"
    data.mkdir()
    (data / "notes.txt").write_text("not ours", encoding="utf-8")
    (data / "notes.txt").chmod(0o644)
    (data / "logs").mkdir()
    (data / "logs" / "gridcollect.log").write_text("", encoding="utf-8")
    (data / "logs" / "gridcollect.log").chmod(0o644)
    Store.open(data, formset, passphrase_file=_passfile(tmp_path, PASS)).close()
    assert stat.S_IMODE((data / "notes.txt").stat().st_mode) == 0o644
    assert stat.S_IMODE((data / "logs" / "gridcollect.log").stat().st_mode) == 0o600
    assert stat.S_IMODE((data / "logs").stat().st_mode) == 0o700


def test_two_first_runs_at_once_share_one_key_and_lose_nothing(
    tmp_path: Path, formset: FormSet, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker's first run and the nightly sync set up one data dir at once: whichever
    writes the key file second must not replace it (the store is encrypted under the first)."""
    data = tmp_path / "data"
    passfile = _passfile(tmp_path, PASS)
    real_new = keyfile.new

    def other_process_sets_up_meanwhile(passphrase: str, kdf=None):  # noqa: ANN001, ANN202
        made = real_new(passphrase, kdf)  # our scrypt run: the other process finishes first
        monkeypatch.setattr(keyfile, "new", real_new)
        other = Store.open(data, formset, passphrase_file=passfile)
        other.save("resident", resident(seq=11, name="欧阳娜娜"))
        other.close()
        keys.forget()  # the other process's key is not ours
        return made

    monkeypatch.setattr(keyfile, "new", other_process_sets_up_meanwhile)
    store = Store.open(data, formset, passphrase_file=passfile)
    assert [r.data["name"] for r in store.iter_records("resident")] == ["欧阳娜娜"]
    store.close()
    keys.forget()
    again = Store.open(data, formset, passphrase_file=passfile)
    assert again.count("resident") == 1
    again.close()


def test_a_missing_key_file_beside_an_encrypted_store_is_not_replaced_by_a_new_one(
    tmp_path: Path, formset: FormSet
) -> None:
    """Key file lost (a crash, a half-restored backup) but the store encrypted: a new key
    cannot open it, so no new key file is made over the place the backup goes."""
    data = tmp_path / "data"
    passfile = _passfile(tmp_path, PASS)
    store = Store.open(data, formset, passphrase_file=passfile)
    store.save("resident", resident(seq=5))
    store.close()
    kpath = keys.key_path(data / "gridcollect.sqlite")
    backup = kpath.read_bytes()
    kpath.unlink()
    keys.forget()
    with pytest.raises(PassphraseError) as caught:
        Store.open(data, formset, passphrase_file=passfile)
    assert caught.value.key == "key_file_missing" and not kpath.exists()
    assert str(kpath) in caught.value.text("zh") and "restore it" in caught.value.text("en")
    kpath.write_bytes(backup)  # the backup restored: the data opens again
    restored = Store.open(data, formset, passphrase_file=passfile)
    assert restored.count("resident") == 1
    restored.close()


def test_a_disk_full_while_changing_the_passphrase_keeps_the_old_key_file(
    tmp_path: Path, formset: FormSet, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a nearly full disk write() stores what fits and returns that count (the ENOSPC
    comes at the next call): the half-written key file must not replace the whole one."""
    db = tmp_path / "gridcollect.sqlite"
    keys.setup(db, PASS)
    Store(db, formset).close()
    before = keys.key_path(db).read_bytes()
    real_write = os.write

    def disk_nearly_full(fd: int, data: bytes) -> int:
        if len(data) <= 100:
            raise OSError(28, "No space left on device")
        return real_write(fd, bytes(data)[:100])

    monkeypatch.setattr(os, "write", disk_nearly_full)
    with pytest.raises(OSError):
        keys.change_passphrase(db, PASS, "a brand new passphrase")
    monkeypatch.setattr(os, "write", real_write)
    assert keys.key_path(db).read_bytes() == before
    keys.forget()
    assert keys.unlock(db, PASS)


def test_a_demo_run_over_a_lost_key_file_keeps_the_demo_passphrase(
    tmp_path: Path, formset: FormSet
) -> None:
    """``gridcollect demo`` on a demo dir whose key file is lost must not write a new random
    demo passphrase: the key file restored from a backup opens only with the old one."""
    data = tmp_path / "demo"
    store = Store.open(data, formset, demo_notice=lambda _path: None)
    store.save("resident", resident(seq=6))
    store.close()
    kpath = keys.key_path(data / "gridcollect.sqlite")
    backup = kpath.read_bytes()
    kpath.unlink()
    keys.forget()
    with pytest.raises(PassphraseError):
        Store.open(data, formset, demo_notice=lambda _path: None)
    kpath.write_bytes(backup)
    restored = Store.open(data, formset)  # from the demo file, as before the loss
    assert restored.count("resident") == 1
    restored.close()


def test_a_data_dir_on_a_disk_without_hard_links_is_still_set_up(
    tmp_path: Path, formset: FormSet, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A data dir on a FAT/exFAT stick: link() is refused there; the key file is still made."""

    def no_hard_links(*_args: object, **_kwargs: object) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_hard_links)
    data = tmp_path / "data"
    store = Store.open(data, formset, passphrase_file=_passfile(tmp_path, PASS))
    store.save("resident", resident(seq=2))
    store.close()
    assert sorted(p.name for p in data.iterdir() if p.name.startswith("gridcollect.key")) == [
        "gridcollect.key"
    ]
    keys.forget()
    assert keys.unlock(data / "gridcollect.sqlite", PASS)


def test_two_processes_writing_the_key_file_at_once_leave_a_whole_one(
    tmp_path: Path, formset: FormSet, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``passphrase change`` in one terminal while ``passphrase keyring off`` runs in another:
    each writes its own temp file, so neither publishes (or loses) the other's half."""
    db = tmp_path / "gridcollect.sqlite"
    keys.setup(db, PASS)
    Store(db, formset).close()
    real_replace = os.replace

    def other_process_writes_meanwhile(src: str, dst: str) -> None:
        monkeypatch.setattr(os, "replace", real_replace)
        keys.keyring_disable(db)  # the other process's whole write, between our fsync and rename
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", other_process_writes_meanwhile)
    keys.change_passphrase(db, PASS, "a brand new passphrase")
    keys.forget()
    assert keys.unlock(db, "a brand new passphrase")
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".new")] == []


@pytest.mark.parametrize("n", [3, 2**40])
def test_a_key_file_with_damaged_kdf_parameters_is_reported_not_a_crash(
    tmp_path: Path, formset: FormSet, n: int
) -> None:
    """A flipped bit in the key file's scrypt cost: "damaged, restore it", not a traceback."""
    data = tmp_path / "data"
    passfile = _passfile(tmp_path, PASS)
    Store.open(data, formset, passphrase_file=passfile).close()
    kpath = keys.key_path(data / "gridcollect.sqlite")
    body = json.loads(kpath.read_text())
    body["slots"]["passphrase"]["n"] = n
    kpath.write_text(json.dumps(body))
    keys.forget()
    with pytest.raises(PassphraseError) as caught:
        Store.open(data, formset, passphrase_file=passfile)
    assert caught.value.key == "key_file_bad"


# -- the passphrase's Unicode form (a Chinese IME types full-width letters and digits) ----------

FULL_WIDTH = "ｍｉｍａ１２３４ｘｙ"  # what an IME left in full-width mode types for "mima1234xy"
HALF_WIDTH = "mima1234xy"


def _old_key_file(db: Path, passphrase: str) -> bytes:
    """A key file as the code before the "norm" field wrote it (scrypt over the passphrase's
    UTF-8 exactly as typed); returns its data key."""
    import base64
    import secrets

    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    data_key, key_id = secrets.token_bytes(32), secrets.token_hex(16)
    salt, nonce = secrets.token_bytes(16), secrets.token_bytes(12)
    wrapping = hashlib.scrypt(
        passphrase.encode("utf-8"), salt=salt, n=FAST["n"], r=8, p=1, dklen=32
    )
    aad = f"gridcollect-key/1|{key_id}|passphrase".encode("ascii")
    sealed = AESGCM(wrapping).encrypt(nonce, data_key, aad)

    def b64(raw: bytes) -> str:
        return base64.b64encode(raw).decode("ascii")

    body = {
        "format": "gridcollect-key/1",
        "key_id": key_id,
        "cipher": "sqlcipher4 raw 256-bit key",
        "slots": {
            "passphrase": {
                "kdf": "scrypt",
                **FAST,
                "salt": b64(salt),
                "nonce": b64(nonce),
                "sealed": b64(sealed),
            }
        },
    }
    keys.key_path(db).write_text(json.dumps(body, indent=1, sort_keys=True) + "\n")
    keys.key_path(db).chmod(0o600)
    return data_key


@pytest.mark.parametrize(
    ("made_with", "opened_with"),
    [
        (FULL_WIDTH, HALF_WIDTH),
        (HALF_WIDTH, FULL_WIDTH),
        ("口令 cafe\u0301 2026", "口令 caf\u00e9 2026"),  # NFD (macOS input) vs NFC
    ],
)
def test_a_new_key_file_opens_with_the_same_passphrase_in_another_unicode_form(
    tmp_path: Path, formset: FormSet, made_with: str, opened_with: str
) -> None:
    data = tmp_path / "data"
    store = Store.open(data, formset, passphrase_file=_passfile(tmp_path, made_with, "made"))
    store.save("resident", resident(seq=21))
    store.close()
    keys.forget()
    store = Store.open(data, formset, passphrase_file=_passfile(tmp_path, opened_with, "typed"))
    assert store.count("resident") == 1
    store.close()
    slot = json.loads(keys.key_path(data / "gridcollect.sqlite").read_text())["slots"]
    assert slot["passphrase"]["norm"] == "NFKC"
    keys.forget()
    with pytest.raises(PassphraseError) as wrong:
        Store.open(data, formset, passphrase_file=_passfile(tmp_path, "mima1234xz", "bad"))
    assert wrong.value.key == "wrong_file"


def test_the_environment_file_and_the_keyring_go_through_the_same_normalisation(
    tmp_path: Path, formset: FormSet, monkeypatch: pytest.MonkeyPatch
) -> None:
    keyringkit.use(tmp_path / "keyring.json")
    data = tmp_path / "data"
    Store.open(data, formset, passphrase_file=_passfile(tmp_path, HALF_WIDTH, "made")).close()
    db = data / "gridcollect.sqlite"
    keys.forget()
    monkeypatch.setenv(sources.ENV_VAR, str(_passfile(tmp_path, FULL_WIDTH, "env")))
    Store.open(data, formset).close()
    keys.keyring_enable(db, FULL_WIDTH)  # turning the keyring on asks the passphrase too
    keys.forget()
    monkeypatch.delenv(sources.ENV_VAR)
    Store.open(data, formset).close()  # from the keyring alone


def test_an_old_key_file_keeps_opening_with_exactly_the_passphrase_as_typed(
    tmp_path: Path, formset: FormSet
) -> None:
    """A key file written before the "norm" field derives from the passphrase as typed: the
    full-width passphrase that made it opens it, its half-width form does not, and opening
    it does not rewrite it; a passphrase change writes the new slot normalised."""
    data = tmp_path / "data"
    data.mkdir()
    db = data / "gridcollect.sqlite"
    store = Store(db, formset, _old_key_file(db, FULL_WIDTH))
    store.save("resident", resident(seq=22))
    store.close()
    before = keys.key_path(db).read_bytes()
    keys.forget()
    store = Store.open(data, formset, passphrase_file=_passfile(tmp_path, FULL_WIDTH, "typed"))
    assert store.count("resident") == 1
    store.close()
    assert keys.key_path(db).read_bytes() == before
    keys.forget()
    with pytest.raises(PassphraseError) as wrong:
        Store.open(data, formset, passphrase_file=_passfile(tmp_path, HALF_WIDTH, "half"))
    assert wrong.value.key == "wrong_file"
    keys.change_passphrase(db, FULL_WIDTH, "ｎｅｗ ｐａｓｓ ２０２６")
    assert json.loads(keys.key_path(db).read_text())["slots"]["passphrase"]["norm"] == "NFKC"
    keys.forget()
    assert keys.unlock(db, "new pass 2026")


def test_a_key_file_with_an_unknown_normalisation_is_reported_not_guessed(
    tmp_path: Path, formset: FormSet
) -> None:
    """A later version's form of the passphrase this code does not know: "damaged or not
    ours", not a "wrong passphrase" that sends the worker guessing."""
    data = tmp_path / "data"
    passfile = _passfile(tmp_path, PASS)
    Store.open(data, formset, passphrase_file=passfile).close()
    kpath = keys.key_path(data / "gridcollect.sqlite")
    body = json.loads(kpath.read_text())
    body["slots"]["passphrase"]["norm"] = "NFKC+casefold"
    kpath.write_text(json.dumps(body))
    keys.forget()
    with pytest.raises(PassphraseError) as caught:
        Store.open(data, formset, passphrase_file=passfile)
    assert caught.value.key == "key_file_bad"


# -- which source gives the passphrase: a stale one must not hide the keyring -----------------


def test_a_stale_passphrase_file_in_the_environment_falls_through_to_the_keyring(
    tmp_path: Path, formset: FormSet, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The nightly sync's $GRIDCOLLECT_PASSPHRASE_FILE still holds the passphrase from before a
    change, the keyring holds the key: the keyring opens it. Given explicitly, the same stale
    file is refused, naming the file; with the keyring off, the error names the variable."""
    keyringkit.use(tmp_path / "keyring.json")
    data = tmp_path / "data"
    store = Store.open(data, formset, passphrase_file=_passfile(tmp_path, PASS))
    store.save("resident", resident(seq=23))
    store.close()
    db = data / "gridcollect.sqlite"
    keys.keyring_enable(db, PASS)
    stale = _passfile(tmp_path, "the passphrase before the change", "stale")
    keys.forget()
    monkeypatch.setenv(sources.ENV_VAR, str(stale))
    store = Store.open(data, formset)
    assert store.count("resident") == 1
    store.close()
    keys.forget()
    with pytest.raises(PassphraseError) as explicit:
        Store.open(data, formset, passphrase_file=stale)
    assert explicit.value.key == "wrong_file"
    assert str(stale) in explicit.value.text("zh") and str(stale) in explicit.value.text("en")
    keys.keyring_disable(db)
    keys.forget()
    with pytest.raises(PassphraseError) as implicit:
        Store.open(data, formset)
    assert implicit.value.key == "wrong_env"
    for lang in ("zh", "en"):
        assert str(stale) in implicit.value.text(lang) and sources.ENV_VAR in implicit.value.text(
            lang
        )


def test_a_new_passphrase_is_counted_in_the_form_its_key_derives_from() -> None:
    """ "café123" typed on a Mac arrives as 8 code points (e + combining accent); its key
    derives from the 7-character NFKC form, which is too short."""
    decomposed = "cafe\u0301123"
    assert len(decomposed) == 8
    problem = sources.check_new(decomposed)
    assert problem is not None and problem.key == "too_short"
    assert sources.check_new("ｍｉｍａ１２３４") is None  # 8 full-width characters stay 8


def test_the_strength_hint_rates_a_full_width_passphrase_as_its_half_width_form() -> None:
    """Full-width letters are not "symbols": the key derives from "mima1234xyz1" either way."""
    assert (
        sources.strength("ｍｉｍａ１２３４ｘｙｚ１") == sources.strength("mima1234xyz1") == "fair"
    )
