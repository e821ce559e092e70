"""Schemathesis against the served OpenAPI schema: generated requests never cause a 5xx.

Bounded on purpose (20 examples per operation, SQLite only): the two-backend behaviour is
covered by the other server tests; this one hunts for crashes on odd input.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error

from app.core.forms import FormSet
from app.core.ids import uuid7
from sync import protocol as p
from sync.server import auth
from sync.server.app import create_app
from tests.sync.conftest import GRID_A, PASSWORD, Client, Platform, seed, start_server


@pytest.fixture(scope="module")
def live_url(tmp_path_factory: pytest.TempPathFactory, formset: FormSet) -> Iterator[str]:
    path: Path = tmp_path_factory.mktemp("schema") / "platform.db"
    app = create_app(f"sqlite:///{path}", forms=formset, secret="schema-test")
    seed(app.state.engine)
    server, thread, url = start_server(app)
    _seed_department(app, formset)
    APP["app"] = app
    yield url
    server.should_exit = True
    thread.join(30)
    app.state.engine.dispose()


@pytest.fixture
def auth_headers(live_url: str) -> dict[str, str]:
    """A fresh admin login (a generated logout revokes the previous one). The fuzzed
    ``POST /v1/login`` fails often enough to lock this address out (PROTOCOL.md §4.2): the
    server's throttle clock is then moved past the lock, as a real admin would wait it out."""
    for hours in range(1, 6):
        resp = requests.post(
            f"{live_url}/v1/login",
            json={"username": "root", "password": PASSWORD, "device_id": "fuzzer"},
            timeout=30,
        )
        if resp.status_code != 429:
            break
        later = timedelta(hours=hours)
        APP["app"].state.clock = lambda later=later: auth.now() + later
    return {"Authorization": f"Bearer {resp.json()['token']}", "X-Device-Id": "fuzzer"}


@pytest.fixture(scope="module")
def operations(live_url: str) -> list[Any]:
    """The operations of the schema the live server serves, loaded once."""
    schema = schemathesis.openapi.from_url(f"{live_url}/openapi.json")
    return sorted((r.ok() for r in schema.get_all_operations()), key=lambda op: op.label)


SYNC_ENDPOINTS, CONSOLE_ENDPOINTS, DEPT_ENDPOINTS = 10, 18, 4  # /v1/..., /v1/console/, /v1/dept/
TASK_ENDPOINTS = 11  # /v1/console/tasks... (PROTOCOL.md §13)
ENDPOINTS = SYNC_ENDPOINTS + CONSOLE_ENDPOINTS + TASK_ENDPOINTS + DEPT_ENDPOINTS
DEPT_KEY: dict[str, str] = {}
APP: dict[str, Any] = {}  # the live server's app (its throttle clock)


def _seed_department(app: Any, formset: FormSet) -> None:
    """A department with a grant (id 1) and a key, so /v1/dept is fuzzed past the login."""
    from sync.server import admin, db
    from sync.server.dept import grants, keys

    admin.put_department(app.state.engine, "mz", "民政局")
    spec = grants.GrantSpec(
        "mz", "核对", "依据", {"resident": {"name": "full"}}, "2020-01-01", "2099-12-31"
    )
    with db.write(app.state.engine) as conn:
        grants.create(conn, formset, spec, "root")
        DEPT_KEY["Authorization"] = "Bearer " + keys.create(conn, app.state.key, "mz", "", "root")


def test_the_served_schema_lists_every_endpoint(operations: list[Any]) -> None:
    labels = [op.label for op in operations]
    assert "POST /v1/push" in labels and "GET /v1/pull" in labels and len(labels) == ENDPOINTS
    assert sum(" /v1/console/tasks" in label for label in labels) == TASK_ENDPOINTS
    assert sum(" /v1/console/" in label for label in labels) == CONSOLE_ENDPOINTS + TASK_ENDPOINTS
    assert sum(" /v1/dept/" in label for label in labels) == DEPT_ENDPOINTS


@pytest.mark.parametrize("index", range(ENDPOINTS))
def test_no_server_errors(
    index: int, live_url: str, operations: list[Any], auth_headers: dict[str, str]
) -> None:
    """Generated requests for one operation of the served schema; none may get a 5xx."""
    operation = operations[index]

    @settings(
        max_examples=20,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )
    @given(case=operation.as_strategy())
    def run(case: Any) -> None:
        if operation.label == "POST /v1/push" and isinstance(case.body, dict):
            case.body.update(protocol=1, device_id="fuzzer")  # get past the envelope to the ops
        headers = DEPT_KEY if " /v1/dept/" in operation.label else auth_headers
        response = case.call(base_url=live_url, headers=headers, timeout=60)
        case.validate_response(response, checks=[not_a_server_error])

    run()


_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=40),
    st.text(min_size=300, max_size=400),  # longer than any key or name column
    st.sampled_from(["1985-06-15", "2099-01-01", "330106198506151233", "张三"]),
)
_values = st.recursive(
    _scalars,
    lambda kids: (
        st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=5), kids, max_size=3)
    ),
    max_leaves=6,
)


def test_pushes_with_arbitrary_values_never_fail(platform: Platform, formset: FormSet) -> None:
    """Ops with any JSON in any field of any form, as a worker and as an admin, on both
    backends (PostgreSQL refuses more than SQLite: NUL, long keys): a 4xx or per-op results,
    never a 5xx."""
    clients = [platform.client("wang"), platform.client("root")]
    names = sorted({f for form in formset.forms.values() for f in form.fields} | {"_status"})

    @settings(
        max_examples=60,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )
    @given(
        form=st.sampled_from(sorted(formset.forms)),
        kind=st.sampled_from(["create", "update", "delete", "resolve"]),
        base=st.none() | st.integers(0, 3),
        fields=st.dictionaries(st.sampled_from(names), _values, max_size=6),
        grid=st.sampled_from([GRID_A, GRID_A, None]),
        c=st.sampled_from(clients),
    )
    def run(
        form: str, kind: str, base: int | None, fields: dict[str, Any], grid: str | None, c: Client
    ) -> None:
        if grid:
            fields = {**fields, "grid": grid}
        resp = c.push_raw([c.op(uuid7(), kind, fields, base_version=base, form=form)])
        assert resp.status_code < 500, resp.text
        if resp.status_code == 200:
            (result,) = p.PushResponse.model_validate(resp.json()).results
            assert result.status in ("applied", "conflict", "merged_into", "rejected")
        else:
            assert p.ErrorResponse.model_validate(resp.json()).error.message_zh

    run()
