"""HTTP client of the sync protocol (PROTOCOL.md): one method per endpoint, nothing stored.

Why a class of its own: the session and the replica must not care about transport. This
module owns timeouts, retries (exponential backoff with jitter on connection errors, 5xx and
429, never on other 4xx nor on a certificate the device does not trust: they would fail the
same way again), gzip request bodies, the auth headers and a re-login when a token expires.
Every failure becomes one of five typed errors with a one-line reason in Chinese and English,
so callers map them to exit codes or dialogs.

Messages and log lines never carry request bodies (personal data) or the password.
"""

from __future__ import annotations

import gzip
import logging
import random
import ssl
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

import requests
from pydantic import BaseModel, ValidationError

from app.core.messages import pick
from app.core.records import canonical_json_map
from sync.protocol import (
    SUPPORTED_PROTOCOLS,
    Info,
    LoginResponse,
    PullResponse,
    PushResponse,
    ReviewList,
    ReviewOutcome,
    UserInfo,
)

log = logging.getLogger("gridcollect.sync.client")

USER_AGENT = "GridCollect-sync/1"
GZIP_MIN_BYTES = 1024
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
RELOGIN_CODES = frozenset({"auth", "device"})

M = TypeVar("M", bound=BaseModel)


class SyncError(Exception):
    """Base of the client's errors: a machine code and a one-line reason in zh and en."""

    def __init__(
        self,
        code: str,
        message_zh: str,
        message_en: str,
        *,
        status: int | None = None,
        op_id: str | None = None,
        index: int | None = None,
        field: str | None = None,
    ) -> None:
        super().__init__(f"{message_zh} / {message_en}")
        self.code = code
        self.message_zh = message_zh
        self.message_en = message_en
        self.status = status
        self.op_id = op_id
        self.index = index
        self.field = field

    def reason(self, lang: str = "zh") -> str:
        """One line for a person: Chinese by default, English with ``lang="en"``."""
        text = pick(lang, self.message_zh, self.message_en)
        return " ".join(text.split())


class AuthError(SyncError):
    """Wrong credentials, or a token the server no longer accepts: a person must act."""


class ProtocolError(SyncError):
    """The server refused the request (4xx) or answered something this client cannot read."""


class ServerError(SyncError):
    """The server failed (5xx) on every attempt: unavailable for now, like an unreachable one."""


class NetworkError(SyncError):
    """The server could not be reached (connection refused, reset, timeout) on every attempt."""


class CertificateError(SyncError):
    """The server's TLS certificate was not accepted (no trusted CA signed it, another name,
    expired): not retried, since only a person can fix it (``--cafile``, the URL, the clock)."""


@dataclass
class Retry:
    """How often and how patiently to retry; ``sleep`` is injectable so tests do not wait."""

    attempts: int = 5
    base: float = 0.5
    cap: float = 20.0
    sleep: Callable[[float], None] = time.sleep
    rng: random.Random | None = None

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Backoff before retry number ``attempt`` (0-based): half fixed, half random (jitter)."""
        ceiling = min(self.cap, self.base * (2**attempt))
        rng = self.rng or random
        wait = ceiling / 2 + rng.uniform(0, ceiling / 2)
        if retry_after is not None:
            wait = max(wait, min(retry_after, self.cap))
        return wait


@dataclass
class TransferStats:
    """What went over the wire: HTTP requests (retries included) and body bytes both ways."""

    requests: int = 0
    retries: int = 0
    bytes_sent: int = 0
    bytes_received: int = 0


class PreparedOps(list[Mapping[str, Any]]):
    """A push's ops with the request body ``Client.prepare_push`` encoded for them: what it
    was encoded for (protocol, device id, task results) and the body and headers."""

    body: tuple[tuple[Any, ...], tuple[bytes | None, dict[str, str]]] | None = None


class Client:
    """One server, one device. ``login`` first, then ``push``/``pull``.

    ``session`` may be given (tests mount fault-injecting adapters on it).
    """

    def __init__(
        self,
        base_url: str,
        device_id: str,
        *,
        timeout: tuple[float, float] = (5.0, 60.0),
        retry: Retry | None = None,
        session: requests.Session | None = None,
        gzip_min: int = GZIP_MIN_BYTES,
        installation: str | None = None,
        cafile: str | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        # TLS trust: these CA certificates (an office's own CA), else the system's or
        # $REQUESTS_CA_BUNDLE. Given per request: requests lets the variable override a
        # session's ``verify``.
        self.verify: bool | str = cafile or True
        self.device_id = device_id
        # The data dir's installation nonce (``sync.replica.identity``), sent at login so the
        # server can tell a copied data dir from the original; ``device_status`` is its answer.
        self.installation = installation
        self.device_status: str | None = None
        self.timeout = timeout
        self.retry = retry or Retry()
        self.http = session or requests.Session()
        self.gzip_min = gzip_min
        self.token: str | None = None
        self.user: UserInfo | None = None
        self.protocol: int | None = None
        self.server_info: Info | None = None
        self.stats = TransferStats()
        self._credentials: tuple[str, str] | None = None
        # The device's sync credential (PROTOCOL.md §4.3): from the last password login, or
        # given by the caller from where the device keeps it; used instead of the password.
        self.refresh_token: str | None = None

    def __repr__(self) -> str:  # never show the token or the password
        return f"Client({self.base_url!r}, device={self.device_id!r})"

    @property
    def host(self) -> str:
        """The server's host:port, safe for logs."""
        return urlsplit(self.base_url).netloc or self.base_url

    def close(self) -> None:
        self.http.close()

    # -- endpoints -------------------------------------------------------------------------

    def info(self) -> Info:
        """``GET /v1/info``; picks the protocol version both sides speak."""
        info = self._call("GET", "/v1/info", Info, auth=False)
        common = set(info.protocol_versions) & set(SUPPORTED_PROTOCOLS)
        if not common:
            raise ProtocolError(
                "protocol",
                "服务器的同步协议版本与本程序不兼容，请升级程序。",
                "the server speaks no sync protocol version this app knows; upgrade the app.",
            )
        self.protocol = max(common)
        self.server_info = info
        return info

    def has_feature(self, name: str) -> bool:
        """Whether ``GET /v1/info`` listed ``name`` in ``features`` (e.g. "tasks")."""
        return self.server_info is not None and name in self.server_info.features

    def login(self, username: str, password: str) -> LoginResponse:
        """Exchange credentials for a device-bound token (kept for re-login on expiry).

        The token is bound to the device id the server answers: the one sent, or a new one
        when this is a copy of another installation's data dir (``device_status`` "copied");
        the client uses that id from then on."""
        body: dict[str, Any] = {
            "username": username,
            "password": password,
            "device_id": self.device_id,
        }
        if self.installation:
            body["installation"] = self.installation
        answer = self._call("POST", "/v1/login", LoginResponse, body=body, auth=False)
        self._credentials = (username, password)
        self._take(answer)
        log.info(
            "logged in to %s as role %s (device %s)",
            self.host,
            answer.user.role,
            answer.device_status,
        )
        return answer

    def refresh(self, credential: str | None = None) -> LoginResponse:
        """``POST /v1/token``: an access token for this device's sync credential, no password.

        Raises ``AuthError`` (code ``bad_refresh``) when the platform no longer accepts the
        credential (revoked, expired, another device's): a person must log in again."""
        credential = credential or self.refresh_token
        if not credential:
            raise AuthError(
                "not_logged_in", "尚未登录同步服务器。", "not logged in to the sync server."
            )
        body: dict[str, Any] = {"refresh_token": credential, "device_id": self.device_id}
        if self.installation:
            body["installation"] = self.installation
        answer = self._call("POST", "/v1/token", LoginResponse, body=body, auth=False)
        self.refresh_token = credential
        self._take(answer)
        log.info("signed in to %s with the device credential", self.host)
        return answer

    def _take(self, answer: LoginResponse) -> None:
        self.token, self.user = answer.token, answer.user
        if answer.refresh_token:
            self.refresh_token = answer.refresh_token
        if answer.device_id:
            self.device_id = answer.device_id
        self.device_status = answer.device_status

    def relogin(self) -> LoginResponse:
        """Log in again with the credentials of the last login (e.g. with a new installation):
        the password, or else the device credential."""
        if not self._credentials and self.refresh_token:
            return self.refresh()
        if not self._credentials:
            raise AuthError(
                "not_logged_in",
                "尚未登录同步服务器。",
                "not logged in to the sync server.",
            )
        return self.login(*self._credentials)

    def logout(self) -> None:
        """Revoke this device's token on the server."""
        if self.token:
            self._request("POST", "/v1/logout", body={})
        self.token, self._credentials, self.refresh_token = None, None, None

    def push(
        self,
        ops: Sequence[Mapping[str, Any]],
        task_results: Sequence[Mapping[str, Any]] = (),
    ) -> PushResponse:
        """``POST /v1/push``: one result per op, in order; task results (PROTOCOL.md "Tasks")
        go only when given, so an older server never sees the key."""
        if self.protocol is None:
            self.info()
        encoded = self._pushed_body(ops, task_results)
        answer = self._call("POST", "/v1/push", PushResponse, encoded=encoded)
        if len(answer.results) != len(ops):
            raise ProtocolError(
                "bad_response",
                "服务器返回的结果数量与提交的操作不符。",
                "the server answered a different number of results than ops sent.",
            )
        return answer

    def push_decisions(self, decisions: Sequence[Mapping[str, Any]]) -> PushResponse:
        """``POST /v1/push`` with no ops and the worker's "different" answers (PROTOCOL.md
        §9.2); one answer per decision, in order."""
        if self.protocol is None:
            self.info()
        body = {
            "protocol": self.protocol,
            "device_id": self.device_id,
            "ops": [],
            "dedup_decisions": list(decisions),
        }
        answer = self._call("POST", "/v1/push", PushResponse, encoded=self._encode(body))
        if len(answer.dedup_decisions) != len(decisions):
            raise ProtocolError(
                "bad_response",
                "服务器返回的结果数量与提交的查重结论不符。",
                "the server answered a different number of results than duplicate decisions sent.",
            )
        return answer

    def prepare_push(
        self, ops: Sequence[Mapping[str, Any]], task_results: Sequence[Mapping[str, Any]] = ()
    ) -> PreparedOps:
        """``ops`` as a list that carries its push request's body, encoded now (JSON and gzip).

        Why: a push of ``ops`` and ``task_results`` later sends those bytes as they are. The
        session encodes the batch it reads ahead while the batch before it is in flight, so the
        server, which waits for each request, does not also wait for its encoding (~10 ms per
        1,000 ops, ~10 % of a push of new residents). A body encoded for another device id or
        protocol (the device re-registered meanwhile) or other task results is encoded again."""
        prepared = PreparedOps(ops)
        if self.protocol is not None and (ops or task_results):  # an empty one is not sent
            prepared.body = self._push_key(task_results), self._encode_push(ops, task_results)
        return prepared

    def _pushed_body(
        self, ops: Sequence[Mapping[str, Any]], task_results: Sequence[Mapping[str, Any]]
    ) -> tuple[bytes | None, dict[str, str]]:
        """The push request's body and headers: the prepared ones when they still hold."""
        body = ops.body if isinstance(ops, PreparedOps) else None
        if body is not None and body[0] == self._push_key(task_results):
            return body[1][0], dict(body[1][1])
        return self._encode_push(ops, task_results)

    def _push_key(self, task_results: Sequence[Mapping[str, Any]]) -> tuple[Any, ...]:
        """What a push body was encoded for besides its ops."""
        return self.protocol, self.device_id, list(task_results)

    def _encode_push(
        self, ops: Sequence[Mapping[str, Any]], task_results: Sequence[Mapping[str, Any]]
    ) -> tuple[bytes | None, dict[str, str]]:
        body: dict[str, Any] = {
            "protocol": self.protocol,
            "device_id": self.device_id,
            "ops": list(ops),
        }
        if task_results:
            body["task_results"] = list(task_results)
        return self._encode(body)

    def pull(
        self, since: int, limit: int, *, grid: str | None = None, upto: int | None = None
    ) -> PullResponse:
        """``GET /v1/pull``: records changed after ``since`` in the caller's scope; with
        ``grid``/``upto``, a page of a grid that entered the scope (PROTOCOL.md §8)."""
        params: dict[str, Any] = {"since": since, "limit": limit}
        if grid is not None and upto is not None:
            params.update(grid=grid, upto=upto)
        return self._call("GET", "/v1/pull", PullResponse, params=params)

    def reviews(self, state: str = "open") -> ReviewList:
        """``GET /v1/reviews``: possible duplicates in the caller's scope (supervisor, admin)."""
        return self._call("GET", "/v1/reviews", ReviewList, params={"state": state})

    def decide_review(self, review_id: int, decision: str) -> ReviewOutcome:
        """``POST /v1/reviews/{id}`` with ``"same"`` or ``"different"``."""
        body = {"decision": decision}
        return self._call("POST", f"/v1/reviews/{int(review_id)}", ReviewOutcome, body=body)

    # -- plumbing --------------------------------------------------------------------------

    def _call(
        self,
        method: str,
        path: str,
        model: type[M],
        *,
        body: Any = None,
        params: Mapping[str, Any] | None = None,
        auth: bool = True,
        encoded: tuple[bytes | None, dict[str, str]] | None = None,
    ) -> M:
        response = self._request(method, path, body=body, params=params, auth=auth, encoded=encoded)
        try:
            return model.model_validate_json(response.content)
        except ValidationError as exc:
            log.warning(
                "unreadable answer from %s%s (%s errors)", self.host, path, exc.error_count()
            )
            raise _bad_response() from None

    def _request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: Mapping[str, Any] | None = None,
        auth: bool = True,
        encoded: tuple[bytes | None, dict[str, str]] | None = None,
    ) -> requests.Response:
        """Send with retries; on an expired token log in again once and resend. ``encoded``:
        the body and headers ``_encode`` made already (a prepared push)."""
        data, headers = self._encode(body) if encoded is None else encoded
        relogged = False
        while True:
            if auth:
                headers.update(self._auth_headers())
            response = self._send(method, path, data, headers, params)
            if response.status_code < 400:
                return response
            error = _error_of(response)
            if (
                response.status_code == 401
                and auth
                and not relogged
                and (self._credentials or self.refresh_token)
                and error.code in RELOGIN_CODES
            ):
                relogged = True
                log.info("token refused (%s); logging in again", error.code)
                if self._credentials:
                    self.login(*self._credentials)
                else:
                    self.refresh()
                continue
            raise error

    def _auth_headers(self) -> dict[str, str]:
        if not self.token:
            raise AuthError(
                "not_logged_in",
                "尚未登录同步服务器。",
                "not logged in to the sync server.",
            )
        return {"Authorization": f"Bearer {self.token}", "X-Device-Id": self.device_id}

    def _encode(self, body: Any) -> tuple[bytes | None, dict[str, str]]:
        headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "gzip"}
        if body is None:
            return None, headers
        # one columnar plainness pass (``canonical_json_map``), not a walk of every op's value
        # (a push body of 1,000 ops: 2.3 -> 1.5 ms, issue 17); the same bytes
        raw = canonical_json_map([body], bytes, sort_keys=False)[0]
        headers["Content-Type"] = "application/json"
        if len(raw) >= self.gzip_min:
            raw = gzip.compress(raw, compresslevel=5)
            headers["Content-Encoding"] = "gzip"
        return raw, headers

    def _send(
        self,
        method: str,
        path: str,
        data: bytes | None,
        headers: Mapping[str, str],
        params: Mapping[str, Any] | None,
    ) -> requests.Response:
        """One logical request: retried on network errors, 5xx and 429 only."""
        url = self.base_url + path
        attempts = max(1, self.retry.attempts)
        for attempt in range(attempts):
            last = attempt == attempts - 1
            self.stats.requests += 1
            self.stats.bytes_sent += len(data or b"")
            try:
                response = self.http.request(
                    method,
                    url,
                    data=data,
                    headers=dict(headers),
                    params=params,
                    timeout=self.timeout,
                    verify=self.verify,
                )
                self.stats.bytes_received += _wire_bytes(response)
            except requests.exceptions.ContentDecodingError:
                # a body that is not what its Content-Encoding says: not the platform
                log.warning("%s %s: undecodable answer", method, path)
                raise _bad_response() from None
            except (
                requests.ConnectionError,
                requests.Timeout,
                requests.exceptions.ChunkedEncodingError,  # the link dropped mid-answer
            ) as exc:
                failure = _verify_failure(exc)
                if failure is not None:  # the same certificate again on every retry
                    log.warning(
                        "%s %s: certificate refused (%s)", method, path, failure.verify_message
                    )
                    raise _certificate_error(failure, self.base_url) from None
                log.warning(
                    "%s %s: %s (attempt %d/%d)",
                    method,
                    path,
                    type(exc).__name__,
                    attempt + 1,
                    attempts,
                )
                if last:
                    raise NetworkError(
                        "network",
                        f"无法连接同步服务器 {self.host}（已尝试 {attempts} 次）。请检查网络后重试。",
                        f"cannot reach the sync server {self.host} ({attempts} attempts); "
                        "check the network and try again.",
                    ) from None
                self._pause(attempt, None)
                continue
            if response.status_code not in RETRY_STATUSES:
                return response
            log.warning(
                "%s %s: HTTP %d (attempt %d/%d)",
                method,
                path,
                response.status_code,
                attempt + 1,
                attempts,
            )
            wait = _retry_after(response)
            if response.status_code == 429 and (last or (wait or 0) > self.retry.cap):
                # A 4xx with the server's message; a login lockout (minutes) is not waited out.
                return response
            if last:
                raise _server_error(response, attempts)
            self._pause(attempt, wait)
        raise AssertionError("unreachable")  # pragma: no cover

    def _pause(self, attempt: int, retry_after: float | None) -> None:
        self.stats.retries += 1
        self.retry.sleep(self.retry.delay(attempt, retry_after))


def _wire_bytes(response: requests.Response) -> int:
    """Body bytes as they came over the wire (compressed), read before decoding."""
    content = response.content  # reads and decodes the body
    raw = getattr(response, "raw", None)
    try:
        told = raw.tell() if raw is not None else 0
    except (AttributeError, OSError, ValueError):
        told = 0
    return int(told) if told else len(content)


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _bad_response() -> ProtocolError:
    return ProtocolError(
        "bad_response",
        "服务器的回答无法识别，请确认服务器地址正确、版本匹配。",
        "the server's answer cannot be read; check the server URL and version.",
    )


def _server_error(response: requests.Response, attempts: int) -> ServerError:
    status = response.status_code
    return ServerError(
        "server",
        f"平台暂不可用：已尝试 {attempts} 次，仍回答 HTTP {status}。请稍后再试；"
        "持续出现请联系管理员。",
        f"the platform is unavailable: it still answered HTTP {status} after {attempts} "
        "attempts; try again later, or tell the administrator if it goes on.",
        status=status,
    )


# OpenSSL's verify codes for a certificate of another name (host, e-mail, IP address), and
# for one outside its validity period (expired, not yet valid)
_NAME_MISMATCH = frozenset({62, 63, 64})
_OUT_OF_DATE = frozenset({9, 10})


def _certificate_error(failure: ssl.SSLCertVerificationError, url: str) -> CertificateError:
    """The typed error for a refused server certificate, with what a person can do."""
    host = urlsplit(url).hostname or url
    if failure.verify_code in _NAME_MISMATCH:
        return CertificateError(
            "certificate_name",
            f"服务器证书上的名称与地址 {host} 不符，已停止，未发送任何数据：请使用证书上的服务器名称"
            "（如 https://grid.example.cn），或请管理员为该地址签发证书。",
            f"the server's certificate is not valid for the name {host}; stopped, nothing sent: "
            "use the server name on its certificate (e.g. https://grid.example.cn), or ask the "
            "administrator for a certificate for this address.",
        )
    if failure.verify_code in _OUT_OF_DATE:
        return CertificateError(
            "certificate_expired",
            f"服务器 {host} 的证书已过期或尚未生效，已停止，未发送任何数据：请核对本机日期和时间，"
            "或请管理员更新证书。",
            f"the certificate of {host} has expired or is not valid yet; stopped, nothing sent: "
            "check this computer's date and time, or ask the administrator to renew it.",
        )
    return CertificateError(
        "certificate",
        f"服务器 {host} 的证书不受信任，已停止，未发送任何数据：本机须信任签发该证书的 CA"
        "（如单位自己的 CA）。",
        f"the certificate of {host} is not trusted; stopped, nothing sent: this computer must "
        "trust the CA that signed it (e.g. the office's own CA).",
    )


def _verify_failure(exc: BaseException) -> ssl.SSLCertVerificationError | None:
    """The certificate verification failure inside ``exc``, None for any other failure (a
    TLS handshake cut by the network is a network error, retried). requests wraps urllib3's
    error, which wraps (as an argument, ``reason`` or cause) the ssl module's."""
    seen: set[int] = set()
    todo: list[object] = [exc]
    while todo:
        item = todo.pop()
        if not isinstance(item, BaseException) or id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, ssl.SSLCertVerificationError):
            return item
        todo += [*item.args, getattr(item, "reason", None), item.__cause__, item.__context__]
    return None


def _error_of(response: requests.Response) -> SyncError:
    """The typed error for a 4xx answer, with the server's own zh/en message when it sent one."""
    status = response.status_code
    try:
        body = response.json().get("error") or {}
    except (ValueError, AttributeError):
        body = {}
    if not isinstance(body, dict):
        body = {}
    code = str(body.get("code") or f"http_{status}")
    zh = str(body.get("message_zh") or f"同步服务器拒绝了请求（HTTP {status}）。")
    en = str(body.get("message_en") or f"the sync server refused the request (HTTP {status}).")
    index = body.get("index")
    kind = AuthError if status == 401 or code == "throttled" else ProtocolError
    return kind(
        code,
        zh,
        en,
        status=status,
        op_id=body.get("op_id"),
        index=index if isinstance(index, int) else None,
        field=body.get("field"),
    )
