"""The key file beside the store: the random data key, wrapped once per way of unlocking it.

Why a wrapped random key rather than a key derived from the passphrase: changing the passphrase
(or adding the keyring) then re-wraps 32 bytes instead of re-encrypting the whole store, and
the store's key has full 256-bit strength whatever passphrase the worker picks.

Each *slot* holds the data key sealed with AES-256-GCM (``cryptography``) under a wrapping key:
``passphrase`` derives it with scrypt (slow and memory-hard: 128 MiB, ~0.4 s here per guess),
``keyring`` takes a random 256-bit secret kept in the OS keyring. The file holds no secret in
clear; the GCM tag tells a wrong passphrase from a right one. The AAD binds each sealed key to
its file id and slot, so slots cannot be swapped between files.

A passphrase slot written by this version says ``"norm": "NFKC"``: its key derives from the
passphrase's NFKC form, so the full-width "ｍｉｍａ１２３" a Chinese IME types and "mima123",
or an NFD and an NFC "é", are one passphrase. A slot without the field (older key files)
derives from the passphrase exactly as typed, as it always did: it keeps opening with what
opened it, and is normalised only when a passphrase change writes a new slot.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import unicodedata
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from app.core.vault.perms import create_private, write_private

FORMAT = "gridcollect-key/1"
KEY_BYTES = 32
# OWASP's scrypt floor (N=2^17, r=8, p=1): ~0.4 s and 128 MiB per try on a 2020s laptop.
DEFAULT_KDF = {"n": 2**17, "r": 8, "p": 1}
MAXMEM = 512 * 1024 * 1024
NORM = "NFKC"  # the passphrase's Unicode form in new slots ("" in older key files: as typed)


class KeyFileError(ValueError):
    """The key file is missing, unreadable or not a GridCollect key file."""


class WrongPassphrase(ValueError):
    """The passphrase (or keyring secret) does not open this key file."""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: Any) -> bytes:
    if not isinstance(text, str):
        raise KeyFileError("not a key file")
    return base64.b64decode(text.encode("ascii"), validate=True)


@dataclass(frozen=True)
class Slot:
    """One sealed copy of the data key: how its wrapping key is had, and the sealed bytes."""

    kind: str  # "passphrase" | "keyring"
    nonce: bytes
    sealed: bytes
    salt: bytes = b""
    kdf: dict[str, int] = field(default_factory=dict)
    norm: str = ""  # "NFKC", or "" for a slot written before normalisation (as typed)

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"nonce": _b64(self.nonce), "sealed": _b64(self.sealed)}
        if self.kind == "passphrase":
            out |= {"kdf": "scrypt", **self.kdf, "salt": _b64(self.salt)}
            if self.norm:
                out["norm"] = self.norm
        return out


@dataclass(frozen=True)
class KeyFile:
    """The parsed key file: its id and its slots (no secret in clear)."""

    key_id: str
    slots: dict[str, Slot]

    def with_slot(self, slot: Slot) -> KeyFile:
        return replace(self, slots={**self.slots, slot.kind: slot})

    def without_slot(self, kind: str) -> KeyFile:
        return replace(self, slots={k: v for k, v in self.slots.items() if k != kind})

    def dumps(self) -> bytes:
        body = {
            "format": FORMAT,
            "key_id": self.key_id,
            "cipher": "sqlcipher4 raw 256-bit key",
            "slots": {kind: slot.as_json() for kind, slot in self.slots.items()},
        }
        return (json.dumps(body, indent=1, sort_keys=True) + "\n").encode("ascii")


def normalised(passphrase: str, norm: str = NORM) -> str:
    """The passphrase in the Unicode form ``norm`` ("" leaves it as typed: older slots)."""
    return unicodedata.normalize("NFKC", passphrase) if norm == "NFKC" else passphrase


def derive(passphrase: str, salt: bytes, kdf: dict[str, int], norm: str = "") -> bytes:
    """The passphrase's wrapping key (scrypt with the slot's parameters and Unicode form)."""
    return hashlib.scrypt(
        normalised(passphrase, norm).encode("utf-8"),
        salt=salt,
        n=kdf["n"],
        r=kdf["r"],
        p=kdf["p"],
        maxmem=MAXMEM,
        dklen=KEY_BYTES,
    )


def _aad(key_id: str, kind: str) -> bytes:
    return f"{FORMAT}|{key_id}|{kind}".encode("ascii")


def seal(key_id: str, kind: str, wrapping: bytes, data_key: bytes, **extra: Any) -> Slot:
    """Seal the data key under ``wrapping`` into a new slot (fresh nonce)."""
    nonce = secrets.token_bytes(12)
    sealed = AESGCM(wrapping).encrypt(nonce, data_key, _aad(key_id, kind))
    return Slot(kind=kind, nonce=nonce, sealed=sealed, **extra)


def open_slot(key_id: str, slot: Slot, wrapping: bytes) -> bytes:
    """The data key from ``slot``; ``WrongPassphrase`` if ``wrapping`` is not its key."""
    try:
        return AESGCM(wrapping).decrypt(slot.nonce, slot.sealed, _aad(key_id, slot.kind))
    except InvalidTag as exc:
        raise WrongPassphrase(slot.kind) from exc


def passphrase_slot(
    key_id: str, passphrase: str, data_key: bytes, kdf: dict[str, int] | None = None
) -> Slot:
    """A passphrase slot with a fresh salt (each change of passphrase gets its own), derived
    from the passphrase's NFKC form."""
    params = dict(kdf or DEFAULT_KDF)
    salt = secrets.token_bytes(16)
    wrapping = derive(passphrase, salt, params, NORM)
    return seal(key_id, "passphrase", wrapping, data_key, salt=salt, kdf=params, norm=NORM)


def unlock_passphrase(keyfile: KeyFile, passphrase: str) -> bytes:
    """The data key, if ``passphrase`` is right (slow on purpose: one scrypt run)."""
    slot = keyfile.slots.get("passphrase")
    if slot is None:
        raise KeyFileError("no passphrase slot")
    try:
        wrapping = derive(passphrase, slot.salt, slot.kdf, slot.norm)
    except (ValueError, OverflowError, MemoryError) as exc:  # n not a power of 2, too costly
        raise KeyFileError("bad key derivation parameters") from exc
    return open_slot(keyfile.key_id, slot, wrapping)


def new(passphrase: str, kdf: dict[str, int] | None = None) -> tuple[KeyFile, bytes]:
    """A fresh random data key and a key file with its passphrase slot."""
    data_key = secrets.token_bytes(KEY_BYTES)
    key_id = secrets.token_hex(16)
    slot = passphrase_slot(key_id, passphrase, data_key, kdf)
    return KeyFile(key_id=key_id, slots={"passphrase": slot}), data_key


def _slot(kind: str, raw: Any) -> Slot:
    if not isinstance(raw, dict):
        raise KeyFileError("not a key file")
    extra: dict[str, Any] = {}
    if kind == "passphrase":
        if raw.get("kdf") != "scrypt":
            raise KeyFileError("unknown key derivation")
        kdf = {k: raw.get(k) for k in ("n", "r", "p")}
        if not all(isinstance(v, int) and v > 0 for v in kdf.values()):
            raise KeyFileError("bad key derivation parameters")
        norm = raw.get("norm", "")
        if norm not in ("", NORM):  # a later version's form: guessing would say "wrong"
            raise KeyFileError("unknown passphrase normalisation")
        extra = {"salt": _unb64(raw.get("salt")), "kdf": kdf, "norm": norm}
    return Slot(
        kind=kind, nonce=_unb64(raw.get("nonce")), sealed=_unb64(raw.get("sealed")), **extra
    )


def load(path: Path) -> KeyFile:
    """Parse the key file; ``KeyFileError`` if it is absent or not one of ours."""
    try:
        body = json.loads(path.read_bytes())
    except FileNotFoundError as exc:
        raise KeyFileError("missing") from exc
    except (OSError, ValueError) as exc:
        raise KeyFileError("unreadable") from exc
    if not isinstance(body, dict) or body.get("format") != FORMAT:
        raise KeyFileError("not a key file")
    slots = body.get("slots")
    key_id = body.get("key_id")
    if not isinstance(slots, dict) or not isinstance(key_id, str):
        raise KeyFileError("not a key file")
    try:
        return KeyFile(key_id=key_id, slots={k: _slot(k, v) for k, v in slots.items()})
    except ValueError as exc:  # bad base64
        raise KeyFileError("not a key file") from exc


def save(path: Path, keyfile: KeyFile) -> None:
    """Write the key file atomically, 0600 (a crash leaves the old one or the new one)."""
    write_private(path, keyfile.dumps())


def create(path: Path, keyfile: KeyFile) -> None:
    """Write a new key file, 0600; ``FileExistsError`` if one appeared meanwhile (another
    process's first run), which is then kept: its key may already encrypt the store."""
    create_private(path, keyfile.dumps())


def exists(path: Path) -> bool:
    """True if a key file is at ``path``."""
    return os.path.exists(path)
