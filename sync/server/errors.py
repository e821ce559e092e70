"""Error codes of the platform server with their zh/en messages (PROTOCOL.md §2, §5.3).

One catalog for whole-request errors and per-op rejection reasons, so a code reads the same
everywhere. Messages never include values (they may be personal data).
"""

from __future__ import annotations

from typing import Any

CATALOG: dict[str, tuple[str, str]] = {
    "protocol": (
        "协议版本不受支持，请升级程序。",
        "unsupported protocol version; please upgrade the app.",
    ),
    "bad_json": ("请求内容不是有效的 JSON。", "the request body is not valid JSON."),
    "encoding": (
        "不支持的内容编码，只接受 gzip。",
        "unsupported Content-Encoding; only gzip is accepted.",
    ),
    "device_mismatch": (
        "请求中的设备编号与请求头不一致。",
        "the device_id in the body differs from the X-Device-Id header.",
    ),
    "auth": ("登录已失效，请重新登录。", "not logged in or the login expired; log in again."),
    "device": (
        "此登录属于另一台设备，请在本机重新登录。",
        "this login belongs to another device; log in again on this one.",
    ),
    "login_failed": ("用户名或密码错误。", "wrong user name or password."),
    "throttled": (
        "登录失败次数过多，请 {retry_after} 秒后再试。",
        "too many failed logins; try again in {retry_after} seconds.",
    ),
    "forbidden": ("您的角色无权进行此操作。", "your role may not do this."),
    "out_of_scope": (
        "该记录不在您负责的网格范围内；如人员已迁入本网格，请联系社区管理员转移记录。",
        "the record is outside your grids; if the person moved here, ask the community "
        "administrator to transfer the record.",
    ),
    "grid_missing": (
        "未填写所属网格，无法同步；请填写所属网格后再同步。",
        "the record has no grid and cannot be synced; fill in its grid and sync again.",
    ),
    "not_found": ("找不到请求的内容。", "not found."),
    "dept_only": (
        "部门账号只能按授权取数据（/v1/dept 与控制台“部门取数”页面），不能使用同步、记录或审核功能。",
        "a department account takes data only under its grants (/v1/dept and the console's "
        "department pages); it cannot use sync, record or review functions.",
    ),
    "no_grant": (
        "没有此项授权，或授权不属于您的部门；请在控制台提出数据需求。",
        "no such grant for your department; ask for the data in the console.",
    ),
    "grant_expired": (
        "此授权已过期或尚未生效，请联系平台管理员续期。",
        "this grant has expired or is not valid yet; ask the platform administrator to renew it.",
    ),
    "grant_revoked": (
        "此授权已被撤销，不能再取数据。",
        "this grant was revoked; no more data can be taken under it.",
    ),
    "grant_changed": (
        "授权范围已调整，原同步位置作废；请重新做一次全量导出。",
        "the grant was changed, so the old feed cursor is void; take a fresh full export.",
    ),
    "key_revoked": (
        "此 API 密钥无效或已被撤销，请联系平台管理员。",
        "this API key is unknown or was revoked; contact the platform administrator.",
    ),
    "bad_filter": (
        "筛选条件有误：{detail_zh}",
        "the filter is wrong: {detail_en}",
    ),
    "grant_incomplete": (
        "请填写用途和法律依据。",
        "fill in the purpose and the legal basis.",
    ),
    "grant_period": (
        "有效期不正确：请填写开始和结束日期，结束须晚于开始。",
        "the period is wrong: give a start and an end date, the end after the start.",
    ),
    "grant_no_fields": ("请至少选择一个字段。", "choose at least one field."),
    "unknown_department": ("没有这个部门，请先添加部门。", "no such department; add it first."),
    "unknown_grid": ("没有这个网格。", "no such grid."),
    "unknown_community": ("没有这个社区，请先创建社区。", "no such community; create it first."),
    "bad_stats": (
        "不能按此项统计：只能按网格、表单、状态、年龄段或授权中以明文给出的代码字段统计。",
        "cannot count by this: only by grid, form, status, age band or a coded field the grant "
        "gives in clear.",
    ),
    "stats_not_granted": (
        "此授权没有以明文给出“{zh}”，不能按它统计（统计表的每一行都是一个真实值）。"
        "请按网格、表单、状态或以明文授予的代码字段统计。",
        'the grant does not give "{en}" in clear, so it cannot be counted by (each row of a '
        "count is a real value); count by grid, form, status or a coded field given in full.",
    ),
    "need_reason": ("请填写拒绝理由。", "give the reason for refusing."),
    "bad_cursor": (
        "同步位置无效，请从全量导出重新开始。",
        "the cursor is not valid; start again from a full export.",
    ),
    "base_ahead": (
        "记录的版本号比平台上的还新，本机数据可能来自其他平台；请联系管理员。",
        "the record's base version is newer than the platform's; the device may have synced "
        "with another platform. Contact the administrator.",
    ),
    "cursor_ahead": (
        "同步位置比平台的还新（平台数据可能已重建），将从头重新下载。",
        "the pull cursor is ahead of the platform (its data may have been rebuilt); "
        "pull again from the start.",
    ),
    "already_decided": ("该疑似重复已处理过。", "this possible duplicate was already decided."),
    "too_large": (
        "请求太大（上限 10 MB），请分批同步。",
        "the request is too large (limit 10 MB); sync in smaller batches.",
    ),
    "too_many_ops": (
        "一次提交的修改太多（上限 1000 条），请分批同步。",
        "too many changes in one request (limit 1000); sync in smaller batches.",
    ),
    "malformed": ("请求格式不正确：{detail}", "malformed request: {detail}"),
    "unknown_form": (
        "平台没有此表单，请升级程序或联系管理员。",
        "the platform has no such form; upgrade the app or contact the administrator.",
    ),
    "wrong_form": (
        "记录的表单类型与平台上的不一致。",
        "the record's form differs from the platform's record with this id.",
    ),
    "unknown_field": (
        "平台的表单没有此字段，请升级程序或联系管理员。",
        "the platform's form has no such field; upgrade the app or contact the administrator.",
    ),
    "bad_value": ("字段值的数据类型不正确。", "a field value has the wrong data type."),
    "bad_status": (
        "记录状态只能是 draft 或 complete。",
        "the record status must be draft or complete.",
    ),
    "bad_record_id": ("记录编号格式不正确。", "the record id is not a valid UUID."),
    "nul_char": (
        "内容含有不可见的空字符（\\u0000），请删除后再保存。",
        "a text contains a NUL character (\\u0000); remove it and save again.",
    ),
    "bad_text": ("内容含有无效字符。", "a text contains invalid characters."),
    "too_long": (
        "内容太长（每个值最多 10000 字）。",
        "a value is too long (at most 10000 characters).",
    ),
    "busy": (
        "平台正忙，本次请求未处理，请稍后自动重试。",
        "the platform is busy and did not handle this request; retry after the time it gives.",
    ),
    "bad_refresh": (
        "本机的同步凭据已失效（被撤销、过期或属于其他设备），请用密码重新登录。",
        "this device's sync credential no longer works (revoked, expired or another device's); "
        "log in again with the password.",
    ),
    "internal": (
        "平台内部错误，本次提交未保存，请稍后重试。",
        "internal server error; nothing of this request was kept. Try again later.",
    ),
    # Tasks (PROTOCOL.md §13).
    "unknown_item": (
        "平台上没有这个任务条目（任务可能已被删除），此结果未上传。",
        "the platform has no such task item; this result was not sent.",
    ),
    "bad_reason": (
        "标记“无法完成”须选择或填写原因（最多 200 字）。",
        "marking an item unable needs a reason (at most 200 characters).",
    ),
    "bad_due": ("截止日期须写成 YYYY-MM-DD。", "the due date must be written YYYY-MM-DD."),
    "bad_task": ("任务内容有误：{detail_zh}", "the task is not right: {detail_en}"),
    "bad_assignee": (
        "指派有误，任务未保存：{detail_zh}。只能指派负责本任务网格的网格员。",
        "cannot assign the task, nothing was saved: {detail_en}. Only workers holding one of "
        "the task's grids can be assigned.",
    ),
    "nothing_to_collect": (
        "没有需要采集的记录：所需字段均已填写，可直接批准为授权。",
        "no record lacks the requested fields: approve the request as a grant instead.",
    ),
    "request_no_grids": (
        "需求所列社区下没有网格，请先在平台上建立网格。",
        "the request's communities have no grids; set up their grids first.",
    ),
    "task_closed": (
        "任务已关闭或已取消，不能再修改。",
        "the task is closed or cancelled and cannot be changed any more.",
    ),
    # Per-op rejection reasons.
    "invalid": (
        "记录已标为完成，但有内容需要修改，平台未接收此次修改；请按提示修改后重新保存。",
        "the record is marked complete but has errors; the platform did not take this change. "
        "Fix them and save again.",
    ),
    "duplicate_key": (
        "平台上已有相同证件号码/编码的另一条记录，请核对是否为同一对象。",
        "another record on the platform has the same identifying number; check whether they are "
        "the same.",
    ),
    "stale": (
        "记录在您处理冲突期间已被他人修改，请同步后重新处理。",
        "someone changed the record while you resolved the conflict; sync and resolve again.",
    ),
    "unknown_record": (
        "平台上还没有这条记录，将在下次同步时重试。",
        "the platform does not have this record yet; it will be retried at the next sync.",
    ),
    "op_id_reused": (
        "本设备此前已用同一修改编号上传过不同的内容：数据目录可能是复制来的或从备份恢复的。"
        "请重新登录，本机将登记为新设备并重新上传修改，不会丢失数据。",
        "this device already sent different content under the same change id: the data dir "
        "was probably copied or restored from a backup. Log in again; the device is then "
        "registered as a new one and sends its changes again, nothing is lost.",
    ),
}


class _Params(dict[str, Any]):
    """Message parameters; one a caller did not give reads as "" (a page redirected with only
    the code must not crash on a message that names details)."""

    def __missing__(self, key: str) -> str:
        return ""


def message(code: str, **params: Any) -> tuple[str, str]:
    """(zh, en) for a code; unknown codes fall back to the internal-error text."""
    zh, en = CATALOG.get(code, CATALOG["internal"])
    if not params:
        return zh, en
    return zh.format_map(_Params(params)), en.format_map(_Params(params))


class ApiError(Exception):
    """A whole-request error: HTTP status + wire code (+ the op at fault)."""

    def __init__(
        self,
        status: int,
        code: str,
        *,
        op_id: str | None = None,
        index: int | None = None,
        field: str | None = None,
        headers: dict[str, str] | None = None,
        **params: Any,
    ) -> None:
        super().__init__(code)
        self.status, self.code = status, code
        self.op_id, self.index, self.field = op_id, index, field
        self.headers = headers  # e.g. Retry-After of a 429
        self.params = params

    def body(self) -> dict[str, Any]:
        zh, en = message(self.code, **self.params)
        error: dict[str, Any] = {"code": self.code, "message_zh": zh, "message_en": en}
        for key in ("op_id", "index", "field"):
            if getattr(self, key) is not None:
                error[key] = getattr(self, key)
        return {"error": error}


def error_body(code: str, **params: Any) -> dict[str, Any]:
    zh, en = message(code, **params)
    return {"error": {"code": code, "message_zh": zh, "message_en": en}}
