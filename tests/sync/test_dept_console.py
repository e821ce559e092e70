"""The console's department pages over HTTP (SQLite and PostgreSQL): ask, approve, download
(CSV UTF-8 with BOM, GBK, XLSX), statistics, the record page's receivers, and a department
account that can open nothing else."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re

import requests
from openpyxl import load_workbook
from sqlalchemy import select

from app.core.forms import FormSet
from app.core.ids import uuid7
from sync.server import db
from tests.factories import resident
from tests.sync.conftest import COMMUNITY, GRID_A, GRID_C, Platform
from tests.sync.consolekit import Browser, login
from tests.sync.deptkit import DEPT_USER, far, seed_department

HEADER_ROW = 0


def _residents(platform: Platform) -> dict[str, str]:
    wang, zhao = platform.client("wang"), platform.client("zhao")
    made = {}
    for client, grid, seq, name in (
        (wang, GRID_A, 1, '=HYPERLINK("http://x")'),
        (wang, GRID_A, 3, "王𠮷"),
        (zhao, GRID_C, 5, "赵六"),
    ):
        rid = uuid7()
        data = {
            **resident(grid=grid, seq=seq, name=name, birth=dt.date(1950, 1, 1)),
            "_status": "draft",
        }
        (res,) = client.push([client.op(rid, "create", data)])
        assert res["status"] == "applied", res
        made[name] = rid
    return made


def _download(dept: Browser, grant_id: int, fmt: str) -> requests.Response:
    """A download as the department page's button sends it: a POST with the page's token."""
    return dept.post(
        f"/console/dept/grants/{grant_id}/download", {"form": "resident", "format": fmt}
    )


def _ask(platform: Platform) -> int:
    browser = login(platform, DEPT_USER)
    resp = browser.post(
        "/console/dept/requests",
        {
            "f:resident.name": "1",
            "f:resident.id_number": "1",
            "f:resident.gender": "1",
            "communities": COMMUNITY,
            "filter": "年龄 >= 60",
            "purpose": "高龄津贴发放核对",
            "until": far(),
        },
    )
    assert resp.status_code == 303 and "err=" not in resp.headers["location"], resp.headers
    with db.read(platform.engine) as conn:
        return int(conn.execute(select(db.dept_requests.c.id)).scalar_one())


def test_ask_approve_download_and_trace(platform: Platform, formset: FormSet) -> None:
    made = _residents(platform)
    seed_department(platform)
    request_id = _ask(platform)
    root = login(platform, "root")
    page = root.get("/console/departments")
    assert page.status_code == 200 and f'id="request-{request_id}"' in page.text
    assert re.search(rf'id="fill-{request_id}-name">100%', page.text)
    resp = root.post(
        f"/console/departments/requests/{request_id}/approve",
        {
            "legal_basis": "《老年人权益保障法》第三十三条",
            "m:resident.name": "full",
            "m:resident.id_number": "masked",
            "m:resident.gender": "out",  # narrowed: gender left out
            "valid_to": far(100),
        },
    )
    assert resp.status_code == 303 and "err=" not in resp.headers["location"], resp.headers
    with db.read(platform.engine) as conn:
        grant = conn.execute(select(db.dept_grants)).one()
    assert db.loads(grant.fields) == {"resident": {"id_number": "masked", "name": "full"}}

    dept = login(platform, DEPT_USER)
    home = dept.get("/console/dept")
    assert f'id="grant-{grant.id}" data-state="active"' in home.text
    utf8 = _download(dept, grant.id, "csv")
    assert utf8.status_code == 200 and utf8.content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(utf8.content.decode("utf-8-sig"))))
    assert rows[0] == ["证件号码", "姓名", "导出编号"]  # labels, the form's order
    export_id = rows[1][2]
    assert {r[2] for r in rows[1:]} == {export_id}
    names = sorted(r[1] for r in rows[1:])
    assert names == sorted(['\'=HYPERLINK("http://x")', "王𠮷"])  # formula-safe; grid C out
    assert all("*" in r[0] for r in rows[1:])  # masked
    gbk = _download(dept, grant.id, "csv-gbk")
    text = gbk.content.decode("gbk")
    assert "王?" in text and "1 个字符无法用 GBK 表示" in text.splitlines()[-1]
    xlsx = _download(dept, grant.id, "xlsx")
    book = load_workbook(io.BytesIO(xlsx.content), read_only=True)
    data = [list(r) for r in book.worksheets[0].iter_rows(values_only=True)]
    assert data[0] == ["证件号码", "姓名", "导出编号"] and len(data) == 3
    about = dict(r for r in book.worksheets[1].iter_rows(values_only=True))
    assert about["导出编号 Export id"] == data[1][2]

    # the trace: three downloads, each audited with its export id and count
    with db.read(platform.engine) as conn:
        audit = conn.execute(
            select(db.audit_log.c.target, db.audit_log.c.username).where(
                db.audit_log.c.action == "dept_take"
            )
        ).all()
    assert len(audit) == 3 and all(u == DEPT_USER and "n:2" in t for t, u in audit)
    assert any(export_id in t for t, _u in audit)
    record = root.get(f"/console/records/{made['王𠮷']}")
    assert 'id="receivers"' in record.text and "民政局" in record.text
    untouched = root.get(f"/console/records/{made['赵六']}")
    assert 'id="receivers-none"' in untouched.text
    who = root.get("/console/departments")
    assert export_id in who.text
    taken = dept.get("/console/dept")
    assert export_id in taken.text

    stats = dept.get(f"/console/dept/grants/{grant.id}/stats?by=grid")
    assert stats.status_code == 200 and 'id="stats-total">&lt;5' in stats.text

    # the admin revokes the grant: the next download stops at once, with one clear line
    resp = root.post(f"/console/departments/grants/{grant.id}/revoke")
    assert resp.status_code == 303 and "err=" not in resp.headers["location"]
    stopped = _download(dept, grant.id, "csv")
    assert stopped.status_code == 403 and "此授权已被撤销" in stopped.text
    assert "导出编号" not in stopped.text


def test_a_department_account_opens_nothing_else(platform: Platform) -> None:
    made = _residents(platform)
    seed_department(platform)
    seed_department(platform, "ws", "weisheng")
    from tests.sync.deptkit import make_grant

    theirs = make_grant(platform, department="ws")
    dept = login(platform, DEPT_USER)
    for path in (
        "/console/overview",
        "/console/records?q=张",
        f"/console/records/{made['赵六']}",
        "/console/conflicts",
        "/console/people",
        "/console/audit",
        "/console/departments",
    ):
        resp = dept.get(path)
        assert resp.status_code == 403, path
    resp = dept.post(f"/console/dept/grants/{theirs}/download", {"format": "csv"})
    assert resp.status_code == 403 and "导出编号" not in resp.text
    assert dept.get(f"/console/dept/grants/{theirs}/stats?by=grid").status_code == 403
    resp = dept.post(f"/console/records/{made['赵六']}/reveal", {"field": "id_number"})
    assert resp.status_code == 403
    resp = dept.post("/console/departments/keys", {"department": "mz", "label": "x"})
    assert resp.status_code == 403


def test_a_wrong_request_or_approval_says_what_to_fix_and_stores_nothing(
    platform: Platform,
) -> None:
    from tests.sync.consolekit import stored

    seed_department(platform)
    before = stored(platform)
    dept = login(platform, DEPT_USER)
    resp = dept.post(
        "/console/dept/requests",
        {"f:resident.name": "1", "filter": "年龄 >>= 60", "purpose": "核对", "until": far()},
    )
    assert resp.status_code == 422
    assert "筛选条件有误" in resp.text  # the filter's own message says where
    after = stored(platform)
    for table in ("dept_requests", "dept_grants"):
        assert after[table] == before[table]
    request_id = _ask(platform)
    root = login(platform, "root")
    resp = root.post(f"/console/departments/requests/{request_id}/approve", {"legal_basis": ""})
    assert resp.status_code == 303 and "err=grant_incomplete" in resp.headers["location"]
    page = root.get(resp.headers["location"].replace(platform.url, ""))
    assert "请填写用途和法律依据" in page.text
    with db.read(platform.engine) as conn:
        assert conn.execute(select(db.dept_grants)).first() is None
    # a page redirected with only an error code whose message names details still shows it
    shown = dept.get("/console/dept?err=bad_filter")
    assert shown.status_code == 200 and "筛选条件有误" in shown.text


def test_a_download_happens_only_by_the_page_button_never_by_a_get(
    platform: Platform, formset: FormSet
) -> None:
    """A link prefetched by the browser, a crawler or a forwarded URL must not write that the
    department took the records: the download is a POST carrying the page's CSRF token; a GET
    answers 405 and a POST without the token 403, neither traced."""
    from tests.sync.deptkit import make_grant

    _residents(platform)
    seed_department(platform)
    grant = make_grant(platform)
    dept = login(platform, DEPT_USER)
    path = f"/console/dept/grants/{grant}/download"

    def traced() -> tuple[int, int]:
        with db.read(platform.engine) as conn:
            exports = conn.execute(select(db.dept_exports.c.export_id)).all()
            takes = conn.execute(
                select(db.audit_log.c.id).where(db.audit_log.c.action == "dept_take")
            ).all()
        return len(exports), len(takes)

    page = dept.get("/console/dept")
    assert f'href="{path}' not in page.text  # no link to prefetch
    assert re.search(rf'<form method="post" action="{path}"', page.text)
    got = dept.get(f"{path}?form=resident&format=csv")
    assert got.status_code == 405 and got.headers["allow"] == "POST"
    assert "导出编号" not in got.text and "下载" in got.text
    forged = dept.post(path, {"form": "resident", "format": "csv"}, token=False)
    assert forged.status_code == 403 and "导出编号" not in forged.text
    assert traced() == (0, 0)
    done = _download(dept, grant, "csv")
    assert done.status_code == 200 and "导出编号" in done.content.decode("utf-8-sig")
    assert traced() == (1, 1)


def test_the_statistics_link_counts_and_traces_nothing_until_asked(platform: Platform) -> None:
    """The department page links to its statistics; following (or prefetching) that link shows
    the form, runs no query and traces none. Asking (the form's button) counts and traces."""
    from tests.sync.deptkit import make_grant

    _residents(platform)
    seed_department(platform)
    grant = make_grant(platform)
    dept = login(platform, DEPT_USER)

    def traced() -> list[str]:
        with db.read(platform.engine) as conn:
            return list(conn.execute(select(db.dept_exports.c.kind)).scalars())

    link = re.search(r'href="([^"]*/stats[^"]*)" id="stats-', dept.get("/console/dept").text)
    assert link and "by=" not in link.group(1), link
    page = dept.get(link.group(1).replace("&amp;", "&"))
    assert page.status_code == 200 and 'id="stats-by"' in page.text
    assert 'id="stats-total"' not in page.text
    assert traced() == []
    asked = dept.get(f"/console/dept/grants/{grant}/stats?by=grid")
    assert asked.status_code == 200 and 'id="stats-total"' in asked.text
    assert traced() == ["stats"]
