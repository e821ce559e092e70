"""Users, roles, scopes and device-bound tokens.

Passwords are hashed with scrypt (memory-hard, in the standard library). Tokens are random,
shown once, and stored only as an HMAC under the server secret, so a copied database does not
hand out working tokens. A token works only together with the device id it was issued to.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, delete, insert, select, update
from sqlalchemy.engine import Connection

from sync.server import caller, db, devices

ROLES = ("worker", "supervisor", "admin", "department")
TOKEN_DAYS = 30
REFRESH_DAYS = 365  # a device's sync credential: until revoked, or a year without a password
REFRESHED_ACCESS_HOURS = 12  # an access token got with it lasts one night's sync, not a month
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}
_DUMMY_HASH: str | None = None
# Built once: a statement built per call (``insert(...).values(...)``) had its cache key
# computed anew by SQLAlchemy every time, a sixth of the credential exchange's server CPU.
INSERT_TOKEN = db.prepared(insert(db.tokens))


class AuthError(Exception):
    """Login or token failure; ``code`` is the wire error code (no personal data)."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


@dataclass(frozen=True)
class User:
    """An authenticated caller and the grids they may read and write (``None``: all)."""

    username: str
    role: str
    community: str | None
    grids: frozenset[str] | None
    device_id: str = ""
    token_hash: str = ""
    device_status: str = ""  # at login: new | known | copied | unchecked (devices.claim)
    department: str | None = None  # a department account's department code

    @property
    def is_department(self) -> bool:
        """A department account takes data only under grants (sync/server/dept)."""
        return self.role == "department"

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    def in_scope(self, grid: str | None) -> bool:
        """May this user read/write a record of ``grid``? Grid-less records: admins only."""
        if self.grids is None:
            return True
        return grid is not None and grid in self.grids


def set_kdf_cost(n: int) -> None:
    """Set scrypt's cost for new hashes (a power of two; stored hashes keep their own).

    Only tests lower it, to keep hundreds of logins fast; verification always uses the
    parameters stored with the hash.
    """
    if n < 2 or n & (n - 1):
        raise ValueError("scrypt n must be a power of two")
    _SCRYPT["n"] = n
    global _DUMMY_HASH
    _DUMMY_HASH = None


def now() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def hash_password(password: str) -> str:
    """``scrypt$n$r$p$salt$hash`` (base64), salted per user."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, dklen=32, **_SCRYPT)
    b64 = base64.b64encode
    return f"scrypt${_SCRYPT['n']}${_SCRYPT['r']}${_SCRYPT['p']}${b64(salt).decode()}${b64(digest).decode()}"


def verify_password(password: str, stored: str) -> bool:
    """Constant-time check of a password against a stored hash."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        got = hashlib.scrypt(
            password.encode(), salt=base64.b64decode(salt), dklen=32, n=int(n), r=int(r), p=int(p)
        )
        return hmac.compare_digest(got, base64.b64decode(digest))
    except (ValueError, TypeError):
        return False


def _dummy_hash() -> str:
    global _DUMMY_HASH
    if _DUMMY_HASH is None:
        _DUMMY_HASH = hash_password(secrets.token_hex(8))
    return _DUMMY_HASH


def server_secret(engine: Engine, given: str | None) -> bytes:
    """The HMAC key for token hashes: the one given, else one kept in the database."""
    if given:
        return given.encode()
    with db.write(engine) as conn:
        row = conn.execute(select(db.meta.c.value).where(db.meta.c.key == "secret")).first()
        if row is not None:
            return str(row[0]).encode()
        value = secrets.token_hex(32)
        conn.execute(insert(db.meta).values(key="secret", value=value))
        return value.encode()


def token_hash(secret: bytes, token: str) -> str:
    return hmac.new(secret, token.encode(), hashlib.sha256).hexdigest()


# -- users and scopes ------------------------------------------------------------------------


def create_user(
    conn: Connection,
    username: str,
    password: str,
    role: str,
    *,
    community: str | None = None,
    grids: list[str] | None = None,
    department: str | None = None,
) -> None:
    """Create or replace a user (password re-hashed, grids replaced). Grids a replaced user
    gains are numbered as entering their scope (``scopes``: their devices fetch those grids'
    records); a new user's devices start from nothing and need no grant."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; use one of {', '.join(ROLES)}")
    if role == "supervisor" and not community:
        raise ValueError("a supervisor needs --community")
    if role == "worker" and not grids:
        raise ValueError("a worker needs at least one --grid")
    if (role == "department") != bool(department):
        raise ValueError("a department account (and only one) needs --department")
    if role == "department" and (community or grids):
        raise ValueError("a department account has no community or grids: grants say its data")
    values = {
        "password_hash": hash_password(password),
        "role": role,
        "community": community,
        "disabled": False,
        "department": department,
    }
    exists = conn.execute(
        select(db.users.c.role, db.users.c.community).where(db.users.c.username == username)
    ).first()
    before = scope_of(conn, username, exists.role, exists.community) if exists else None
    if exists:  # a reset: the old password's logins end with it
        conn.execute(update(db.users).where(db.users.c.username == username).values(**values))
        revoke(conn, username)
    else:
        conn.execute(insert(db.users).values(username=username, created_at=iso(now()), **values))
    conn.execute(delete(db.user_grids).where(db.user_grids.c.username == username))
    for grid in dict.fromkeys(grids or []):
        conn.execute(insert(db.user_grids).values(username=username, grid=grid))
    if exists and before is not None:
        after = scope_of(conn, username, role, community)
        _grant_gained(conn, username, before, after)
        if after is not None:  # also a worker made a supervisor, a supervisor moved
            _number_lost(conn, username, before - after)


def set_grids(conn: Connection, username: str, grids: list[str]) -> tuple[list[str], list[str]]:
    """Give a worker exactly ``grids`` (password and tokens kept: the scope is read at each
    request); returns (gained, lost). Gained grids are numbered as entering the worker's
    scope, so their devices fetch those grids' records (``scopes``)."""
    mine = db.user_grids.c
    before = frozenset(
        conn.execute(select(mine.grid).where(mine.username == username)).scalars().all()
    )
    wanted = list(dict.fromkeys(grids))
    lost = sorted(before - set(wanted))
    gained = sorted(set(wanted) - before)
    if lost:
        conn.execute(delete(db.user_grids).where(mine.username == username, mine.grid.in_(lost)))
    for grid in gained:
        conn.execute(insert(db.user_grids).values(username=username, grid=grid))
    _grant_gained(conn, username, before, frozenset(wanted))
    _number_lost(conn, username, lost)
    return gained, lost


def _number_lost(conn: Connection, username: str, lost: Iterable[str]) -> None:
    """Number the grids that left a user's scope (their devices drop the grids' tasks)."""
    from sync.server import scopes  # as _grant_gained

    scopes.leave_user(conn, username, lost)


def _grant_gained(
    conn: Connection, username: str, before: frozenset[str] | None, after: frozenset[str] | None
) -> None:
    """Number the grids that entered the user's scope (none when it was or is everything)."""
    from sync.server import scopes  # scopes types its callers with this module's User

    if before is not None and after is not None:
        scopes.grant_user(conn, username, after - before)


def set_password(conn: Connection, username: str, password: str) -> int:
    """Change a user's password and revoke every token of theirs; returns tokens revoked."""
    conn.execute(
        update(db.users)
        .where(db.users.c.username == username)
        .values(password_hash=hash_password(password))
    )
    return revoke(conn, username)


def set_disabled(conn: Connection, username: str, disabled: bool) -> bool:
    """Disable (every token revoked, logins refused) or enable a user; False if unknown."""
    done = conn.execute(
        update(db.users).where(db.users.c.username == username).values(disabled=disabled)
    ).rowcount
    if done and disabled:
        revoke(conn, username)
    return bool(done)


def scope_of(
    conn: Connection, username: str, role: str, community: str | None
) -> frozenset[str] | None:
    """The grid codes a user may touch; ``None`` for an admin (everything). A department
    account touches no grid: it reads only through its grants."""
    if role == "admin":
        return None
    if role == "department":
        return frozenset()
    if role == "supervisor":
        rows = conn.execute(select(db.grids.c.code).where(db.grids.c.community == community))
        return frozenset(r[0] for r in rows)
    rows = conn.execute(select(db.user_grids.c.grid).where(db.user_grids.c.username == username))
    return frozenset(r[0] for r in rows)


def _community_of(conn: Connection, grids: frozenset[str] | None) -> str | None:
    """A worker's community: the one all their grids belong to, if there is one."""
    if not grids:
        return None
    rows = conn.execute(
        select(db.grids.c.community).where(db.grids.c.code.in_(sorted(grids))).distinct()
    ).all()
    return rows[0][0] if len(rows) == 1 else None


def all_grids(conn: Connection) -> list[str]:
    return sorted(r[0] for r in conn.execute(select(db.grids.c.code)))


# -- tokens ----------------------------------------------------------------------------------


def login(
    engine: Engine,
    secret: bytes,
    username: str,
    password: str,
    device_id: str,
    installation: str | None = None,
    *,
    days: int = TOKEN_DAYS,
) -> tuple[str, str, User]:
    """Check the password and issue a token bound to the device id ``devices.claim`` decides
    (``device_id``, or a new one for a copied data dir): (token, expires_at, user); the user's
    ``device_id``/``device_status`` say which id and why. The token lives ``days`` days."""
    with db.read(engine) as conn:
        row = conn.execute(
            select(
                db.users.c.password_hash,
                db.users.c.role,
                db.users.c.community,
                db.users.c.disabled,
                db.users.c.department,
            ).where(db.users.c.username == username)
        ).first()
    if row is None:
        verify_password(password, _dummy_hash())  # same work as a real check: no user oracle
        raise AuthError("login_failed")
    if not verify_password(password, row.password_hash) or row.disabled:
        raise AuthError("login_failed")
    issued = now()
    with db.write(engine) as conn:
        claimed = devices.claim(conn, device_id, installation, username, iso(issued))
        device_id = claimed.device_id
        token, expires = issue_token(
            conn, secret, username, device_id, issued, timedelta(days=days)
        )
        grids = scope_of(conn, username, row.role, row.community)
        community = row.community or _community_of(conn, grids)
    user = User(
        username,
        row.role,
        community,
        grids,
        device_id,
        token_hash(secret, token),
        claimed.status,
        row.department,
    )
    return token, expires, user


def issue_token(
    conn: Connection,
    secret: bytes,
    username: str,
    device_id: str,
    issued: datetime,
    lifetime: timedelta,
    kind: str = "access",
) -> tuple[str, str]:
    """A new token of the user bound to ``device_id``: (token, expires_at). Only its keyed
    hash is stored. ``kind``: "access" (a bearer token) or "refresh" (a device's sync
    credential, exchanged at ``POST /v1/token``)."""
    token = ("gcr1_" if kind == "refresh" else "gc1_") + secrets.token_urlsafe(32)
    expires = iso(issued + lifetime)
    row = {
        "token_hash": token_hash(secret, token),
        "username": username,
        "device_id": device_id,
        "created_at": iso(issued),
        "expires_at": expires,
        "kind": kind,
    }
    conn.execute(INSERT_TOKEN, row)
    return token, expires


def issue_refresh(engine: Engine, secret: bytes, username: str, device_id: str) -> tuple[str, str]:
    """A device's long-lived sync credential (after a password login): (credential, expires).

    Why: the nightly sync then never runs the password hash (62 ms of CPU and 16 MB a login,
    the largest part of a device's nightly server cost). It is a random 256-bit secret, so a
    keyed SHA-256 digest stores it safely; it is bound to the device id, revoked with the
    user's other tokens (reset, disable, device revoke) and useless as a bearer token."""
    with db.write(engine) as conn:
        revoke_refresh(conn, username, device_id)  # one credential per device: the newest
        return issue_token(
            conn, secret, username, device_id, now(), timedelta(days=REFRESH_DAYS), "refresh"
        )


def refresh(
    engine: Engine,
    secret: bytes,
    credential: str,
    device_id: str,
    installation: str | None = None,
) -> tuple[str, str, User, str | None]:
    """Exchange a device's sync credential for a short access token, without the password:
    (token, expires, user, new credential or ``None``).

    The installation nonce is checked as at login (``devices.claim``): a copied data dir
    signing in with the original's credential is given a new device id, an access token and
    a credential of its own, so copies stay apart exactly as with the password (§4.1).
    Raises ``AuthError("bad_refresh")`` for an unknown, revoked, expired or other device's
    credential, or a disabled user: the device must log in with the password again."""
    digest = token_hash(secret, credential)
    issued = now()
    with db.write(engine) as conn:  # one transaction: this runs for every device every night
        found = caller.find(conn, digest)
        if (
            found is None
            or found.kind != "refresh"
            or found.revoked_at is not None
            or found.disabled
            or found.expires_at <= iso(issued)
            or found.device_id != device_id
        ):
            raise AuthError("bad_refresh")
        claimed = devices.claim(
            conn, device_id, installation, found.username, iso(issued), found.installation
        )
        token, expires = issue_token(
            conn,
            secret,
            found.username,
            claimed.device_id,
            issued,
            timedelta(hours=REFRESHED_ACCESS_HOURS),
        )
    renewed = None
    if claimed.device_id != device_id:
        renewed, _until = issue_refresh(engine, secret, found.username, claimed.device_id)
    user = User(
        found.username,
        found.role,
        found.community or found.grid_community,
        found.grids,
        claimed.device_id,
        token_hash(secret, token),
        claimed.status,
    )
    return token, expires, user, renewed


def authenticate(
    engine: Engine, secret: bytes, token: str, device_id: str, conn: Connection | None = None
) -> User:
    """The user behind a bearer token presented from ``device_id``; raises ``AuthError``.

    One statement answers token, user and scope (``caller.find``): this runs for every
    request of every device, and a revoked token or a changed scope must count at once.
    ``conn``: the request's own transaction, when its work has one open already (a push, a
    pull: no connection of its own for the look-up)."""
    digest = token_hash(secret, token)
    if conn is not None:
        found = caller.find(conn, digest)
    else:
        with db.lookup(engine) as looked:
            found = caller.find(looked, digest)
    if (
        found is None
        or found.kind != "access"  # a sync credential is not a bearer token
        or found.revoked_at is not None
        or found.disabled
        or found.expires_at <= iso(now())
    ):
        raise AuthError("auth")
    if found.device_id != device_id:  # not a secret; compare_digest refuses non-ASCII text
        raise AuthError("device")
    return User(
        found.username,
        found.role,
        found.community,
        found.grids,
        device_id,
        digest,
        department=found.department,
    )


def revoke(
    conn: Connection, username: str, device_id: str | None = None, token_hash_: str | None = None
) -> int:
    """Revoke live tokens of a user (optionally only one device or one token), the devices'
    sync credentials with them; returns how many access tokens (what the answer counts)."""
    t = db.tokens.c
    stmt = update(db.tokens).where(t.username == username, t.revoked_at.is_(None))
    if device_id:
        stmt = stmt.where(t.device_id == device_id)
    if token_hash_:
        stmt = stmt.where(t.token_hash == token_hash_)
    stamp = iso(now())
    conn.execute(stmt.where(t.kind == "refresh").values(revoked_at=stamp))
    return int(conn.execute(stmt.where(t.kind == "access").values(revoked_at=stamp)).rowcount or 0)


def revoke_refresh(conn: Connection, username: str, device_id: str) -> int:
    """Revoke the sync credentials of one of a user's devices (at logout)."""
    stmt = update(db.tokens).where(
        db.tokens.c.username == username,
        db.tokens.c.device_id == device_id,
        db.tokens.c.kind == "refresh",
        db.tokens.c.revoked_at.is_(None),
    )
    return int(conn.execute(stmt.values(revoked_at=iso(now()))).rowcount or 0)
