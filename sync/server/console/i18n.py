"""The console's words in Chinese and English, and how a request picks its language.

The rule is the app's (app/core/messages.py): Chinese unless English is asked for. A request
asks with ``?lang=en`` (remembered in a ``lang`` cookie) or the cookie alone.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request

from app.core.messages import DEFAULT_LANG, LANGS, pick
from sync.server import passwords
from sync.server.errors import ApiError, message

LANG_COOKIE = "lang"

# Errors only the console raises; the rest come from sync/server/errors.py.
ERRORS: dict[str, tuple[str, str]] = {
    "csrf": (
        "表单已过期或来源不明，未做任何修改；请刷新页面后重试。",
        "the form expired or did not come from this console; nothing was changed. Reload the "
        "page and try again.",
    ),
    "export_post": (
        "导出请在任务页面点击“导出”按钮。直接打开导出地址不会导出：每次导出都会记入操作记录，"
        "链接预取或网络爬虫不能留下无人做过的导出。",
        "start an export with its button on the task's page. Opening the export address does "
        "not export: every export is recorded, and a prefetched link or a crawler must not "
        "record one nobody made.",
    ),
    "download_post": (
        "下载请在“部门取数”页面点击下载按钮。直接打开下载地址不会下载：每次下载都会记入取数记录，"
        "链接预取或网络爬虫不能留下无人做过的取数。",
        "start a download with its button on the Department data page. Opening the download "
        "address does not download: every download is recorded as a taking, and a prefetched "
        "link or a crawler must not record one nobody made.",
    ),
    "not_in_conflict": (
        "该字段没有待处理的冲突，请刷新页面。",
        "this field has no open conflict; reload the page.",
    ),
    "no_choice": ("请至少为一个字段选择或填写一个值。", "choose or type a value for a field."),
    "merged_since": (
        "该记录在您处理期间已被合并到另一条记录，未做任何修改；请刷新冲突列表后重新处理。",
        "the record was merged into another one while you looked at it; nothing was changed. "
        "Reload the conflict list and resolve again.",
    ),
    "bad_boundary": (
        "网格边界不是有效的 GeoJSON 多边形（需至少三个不同的点，经纬度 WGS84）：{detail}",
        "the grid boundary is not a valid GeoJSON polygon (at least three distinct points, "
        "WGS84 longitude/latitude): {detail}",
    ),
    "bad_code": (
        "编码只能包含字母、数字、“-”和“_”，最多 64 个字符。",
        "a code may hold only letters, digits, “-” and “_”, at most 64 characters.",
    ),
    "bad_name": (
        "名称不能为空，最多 200 个字。",
        "a name must not be empty (at most 200 characters).",
    ),
    "unknown_community": ("没有这个社区，请先创建社区。", "no such community; create it first."),
    "weak_password": passwords.MESSAGE,
    "not_sensitive": (
        "该字段不是敏感字段，无需单独显示。",
        "this field is not sensitive; it is shown already.",
    ),
    "not_yourself": (
        "不能在这里停用自己或重置自己的密码。",
        "you cannot disable yourself or reset your own password here.",
    ),
    "bad_username": (
        "用户名须为 2–64 个字母、数字、“.”、“-”或“_”。",
        "a user name is 2-64 letters, digits, “.”, “-” or “_”.",
    ),
    "user_exists": (
        "已有同名用户，未做任何修改；请换一个用户名。",
        "a user of that name exists; nothing was changed. Choose another name.",
    ),
    "no_grid": ("请至少选择一个网格。", "choose at least one grid."),
    "not_worker": ("只有网格员有网格。", "only grid workers have grids."),
    "unknown_grid": (
        "所选网格不存在或不归您管理，未做任何修改；请从列表中选择网格。",
        "a chosen grid does not exist or is not yours to manage; nothing was changed. Choose "
        "grids from the list.",
    ),
}


class ConsoleError(ApiError):
    """An ``ApiError`` whose code may come from the console's own catalog."""

    def body(self) -> dict[str, Any]:
        zh, en = console_message(self.code, **self.params)
        error: dict[str, Any] = {"code": self.code, "message_zh": zh, "message_en": en}
        if self.field is not None:
            error["field"] = self.field
        return {"error": error}


def console_message(code: str, **params: Any) -> tuple[str, str]:
    if code in ERRORS:
        zh, en = ERRORS[code]
        return zh.format(**params), en.format(**params)
    return message(code, **params)


def request_lang(request: Request) -> str:
    """``?lang=`` first, then the cookie, then Chinese."""
    for given in (request.query_params.get("lang"), request.cookies.get(LANG_COOKIE)):
        if given in LANGS:
            return given
    return DEFAULT_LANG


# UI words: key -> (zh, en).
WORDS: dict[str, tuple[str, str]] = {
    "app": ("网格采集平台", "GridCollect platform"),
    "overview": ("概览", "Overview"),
    "conflicts": ("冲突", "Conflicts"),
    "reviews": ("疑似重复", "Duplicate reviews"),
    "records": ("记录", "Records"),
    "people": ("人员与设备", "Users and devices"),
    "grids": ("网格", "Grids"),
    "audit": ("操作日志", "Audit log"),
    "login": ("登录", "Log in"),
    "logout": ("退出", "Log out"),
    "username": ("用户名", "User name"),
    "password": ("密码", "Password"),
    "login_failed": ("用户名或密码错误。", "wrong user name or password."),
    "role_worker": ("网格员", "worker"),
    "role_supervisor": ("社区管理员", "supervisor"),
    "role_admin": ("平台管理员", "admin"),
    "read_only": (
        "只读：网格员只能查看本人网格的进度。",
        "Read-only: workers see their own grids' progress.",
    ),
    "grid": ("网格", "Grid"),
    "community": ("社区", "Community"),
    "form": ("表单", "Form"),
    "total": ("合计", "Total"),
    "draft": ("草稿", "draft"),
    "complete": ("已完成", "complete"),
    "created_7": ("7天新增", "created 7 d"),
    "created_30": ("30天新增", "created 30 d"),
    "changed_7": ("7天修改", "changed 7 d"),
    "changed_30": ("30天修改", "changed 30 d"),
    "open_conflicts": ("待处理冲突", "open conflicts"),
    "open_reviews": ("待判疑似重复", "open duplicate reviews"),
    "stale": ("久未更新", "stale"),
    "stale_help": ("超过 {months} 个月未更新的记录", "records not changed for {months} months"),
    "progress": ("各网格完成进度", "Progress per grid"),
    "activity": ("近30天每日新增与修改", "Created and changed per day, last 30 days"),
    "per_worker": ("按人员", "Per worker"),
    "worker": ("人员", "Worker"),
    "created": ("新增", "created"),
    "changed": ("修改", "changed"),
    "devices": ("设备", "Devices"),
    "device": ("设备", "Device"),
    "last_push": ("最近上传", "Last push"),
    "last_pull": ("最近下载", "Last pull"),
    "last_login": ("最近登录", "Last login"),
    "quarantine": ("被平台检查搁置的修改", "Changes set aside by server checks"),
    "reason": ("原因", "Reason"),
    "when": ("时间", "When"),
    "who": ("操作人", "Who"),
    "where": ("来源", "From"),
    "action": ("操作", "Action"),
    "target": ("对象", "Target"),
    "fields": ("字段", "Fields"),
    "record": ("记录", "Record"),
    "field": ("字段", "Field"),
    "base": ("原值", "Base"),
    "server_side": ("平台现值", "Platform"),
    "incoming_side": ("设备提交", "Incoming"),
    "typed": ("手工填写", "Type a value"),
    "resolve": ("确认处理", "Resolve"),
    "resolved": ("已处理，设备下次同步时获得。", "Resolved; devices get it on their next sync."),
    "no_conflicts": ("没有待处理的冲突。", "No open conflicts."),
    "no_reviews": ("没有待判定的疑似重复。", "No open duplicate reviews."),
    "same": ("是同一人", "Same person"),
    "different": ("不是同一人", "Different"),
    "decided": ("已判定。", "Decided."),
    "reviews_open": ("待判定", "Open"),
    "reviews_by_worker": ("网格员判为不是同一人", "Told apart by workers"),
    "by_worker_help": (
        "网格员在设备上判为“不是同一人”的疑似重复。如实为同一人，可判“是同一人”合并；确认无误可判“不是同一人”，之后不再列出。",
        "Possible duplicates a grid worker answered “different” on their device. If they are "
        "the same person, decide “Same person” to merge them; confirm “Different” and the "
        "item leaves this list.",
    ),
    "no_by_worker": ("没有网格员判定待复核的疑似重复。", "No items told apart by workers."),
    "worker_said": ("{who} 于 {at} 判为不是同一人", "{who} answered “different” at {at}"),
    "search": ("搜索", "Search"),
    "search_help": (
        "姓名、拼音首字母、证件号或电话后几位、地址",
        "name, pinyin initials, ID or phone tail, address",
    ),
    "no_results": ("没有找到记录。", "No records found."),
    "status": ("状态", "Status"),
    "deleted": ("已删除", "deleted"),
    "version": ("版本", "Version"),
    "history": ("版本历史", "Version history"),
    "old_new": ("旧值 → 新值", "old → new"),
    "show": ("显示", "Show"),
    "revealed": ("已显示，并记入操作日志。", "Shown; written to the audit log."),
    "role": ("角色", "Role"),
    "disabled": ("已停用", "disabled"),
    "active": ("正常", "active"),
    "disable": ("停用", "Disable"),
    "enable": ("启用", "Enable"),
    "revoke": ("注销此设备", "Revoke device"),
    "reset_password": ("重置密码", "Reset password"),
    "set_grids": ("设置网格", "Set grids"),
    "add_worker": ("新增网格员", "Add a grid worker"),
    "initial_password": ("初始密码", "Initial password"),
    "worker_added": (
        "已新增网格员；请将用户名和初始密码告知本人，首次登录后可在设备上同步。",
        "Grid worker added; give them the user name and initial password to log in "
        "and sync on their device.",
    ),
    "new_password": (
        f"新密码（至少 {passwords.MIN_LENGTH} 个字符，两类以上）",
        f"New password ({passwords.MIN_LENGTH}+ characters, 2+ kinds)",
    ),
    "done": ("已完成。", "Done."),
    "code": ("编码", "Code"),
    "name": ("名称", "Name"),
    "save": ("保存", "Save"),
    "boundary": ("边界", "Boundary"),
    "upload_boundary": ("上传边界（GeoJSON）", "Upload boundary (GeoJSON)"),
    "has_boundary": ("已有边界（{n} 个点）", "boundary set ({n} points)"),
    "no_boundary": ("无边界", "no boundary"),
    "new_grid": ("新建或改名网格", "Create or rename a grid"),
    "since": ("起始时间", "Since"),
    "not_found": ("找不到请求的内容。", "Not found."),
    "forbidden": ("您的角色无权进行此操作。", "Your role may not do this."),
    "console_session": ("网页控制台", "web console"),
    "other_lang": ("English", "中文"),
    "none": ("无", "none"),
    "all_grids": ("全部网格", "all grids"),
    "filter": ("筛选", "Filter"),
    "merged_into": ("已合并到", "merged into"),
    "pair": ("两条记录", "The two records"),
    "tasks": ("任务", "Tasks"),
    "new_task": ("下达任务", "Issue a task"),
    "task_title": ("任务名称", "Title"),
    "instruction": ("说明", "Instruction"),
    "kind": ("类型", "Kind"),
    "kind_verify": ("核实/补全已有记录", "verify existing records"),
    "kind_collect": ("采集新记录", "collect new records"),
    "task_fields": (
        "需核实的字段（字段名或编号，逗号分隔）",
        "Fields to check (labels or ids, comma separated)",
    ),
    "task_filter": ("筛选条件", "Filter"),
    "filter_help": (
        "如：人口类型 = 流动人口 且 证件有效期 < today+30d；运算符 = != < <= > >= in 包含 为空 非空",
        "e.g. population_type = 2 and id_valid_until < today+30d; operators = != < <= > >= in "
        "contains is empty / is filled",
    ),
    "buildings": ("楼栋（逗号分隔，可不填）", "Buildings (comma separated, optional)"),
    "csv_list": (
        "或上传名单 CSV（第一列为证件号码或记录编号）",
        "or upload a list as CSV (first column: ID numbers or record ids)",
    ),
    "due": ("截止日期", "Due"),
    "priority": ("优先级", "Priority"),
    "priority_0": ("普通", "normal"),
    "priority_1": ("高", "high"),
    "priority_2": ("紧急", "urgent"),
    "target_count": ("目标数量", "Target count"),
    "preview": ("预览条目数", "Preview items"),
    "issue": ("下达", "Issue"),
    "preview_total": ("共 {n} 条", "{n} items in all"),
    "items": ("条目", "Items"),
    "state_open": ("待办", "open"),
    "state_done": ("已完成", "done"),
    "state_unable": ("无法完成", "unable"),
    "state_closed": ("已关闭", "closed"),
    "state_cancelled": ("已取消", "cancelled"),
    "overdue": ("已逾期", "overdue"),
    "remind": ("催办（提高优先级）", "Remind (raise priority)"),
    "cancel_task": ("取消任务", "Cancel task"),
    "close_task": ("关闭任务", "Close task"),
    "export_csv": ("导出 CSV", "Export CSV"),
    "export_xlsx": ("导出 Excel", "Export XLSX"),
    "per_grid": ("按网格", "Per grid"),
    "results": ("处理结果", "Results"),
    "record_changes": ("任务下达后记录的修改", "Changes to the record since the task was issued"),
    "source_push": ("设备上报", "from a device"),
    "source_save": ("保存记录", "record saved"),
    "issued": ("下达", "Issued"),
    "assigned_to": ("指派给", "Assigned to"),
    "assigned_all": ("本网格全体网格员", "every worker of its grids"),
    "assignees_pick": ("指派网格员（可多选，可不选）", "Assign to workers (several or none)"),
    "assignees_help": (
        "不选即指派给所选网格的全体网格员。只列出所选网格的网格员（未选网格时为您辖区全部网格）；"
        "改选网格后点“预览”可更新名单。",
        "None chosen: every worker of the chosen grids. Only workers of the chosen grids are "
        "listed (of all your grids when none is chosen); after changing the grids, Preview "
        "updates the list.",
    ),
    "assignees_change": ("更改指派", "Change assignees"),
    "assignees_change_help": (
        "不选即指派给本任务网格的全体网格员；不再被指派的网格员下次同步时任务从其设备上撤下。",
        "None chosen: every worker of the task's grids. Workers no longer assigned have the task "
        "taken off their devices at their next sync.",
    ),
    "no_tasks": ("还没有任务。", "No tasks yet."),
    "progress_task": ("完成情况", "Progress"),
    "collected": ("下达后新采集", "collected since issued"),
    # departments taking data (dept_pages)
    "dept": ("部门取数", "Department data"),
    "departments": ("部门与授权", "Departments and grants"),
    "role_department": ("部门账号", "department"),
    "department": ("部门", "Department"),
    "grants": ("授权", "Grants"),
    "grant": ("授权", "Grant"),
    "purpose": ("用途", "Purpose"),
    "legal_basis": ("法律依据", "Legal basis"),
    "places": ("范围", "Places"),
    "valid_to": ("有效至", "Valid until"),
    "state": ("状态", "State"),
    "dstate_active": ("有效", "active"),
    "dstate_revoked": ("已撤销", "revoked"),
    "dstate_expired": ("已过期", "expired"),
    "dstate_pending": ("未生效", "not valid yet"),
    "dstate_open": ("待审批", "waiting"),
    "dstate_granted": ("已授权", "granted"),
    "dstate_refused": ("已拒绝", "refused"),
    "dstate_collecting": ("已转为采集任务", "being collected"),
    "mode_full": ("完整", "full"),
    "mode_masked": ("脱敏", "masked"),
    "mode_out": ("不提供", "left out"),
    "reduced_year": ("（仅年份，因证件号码脱敏）", " (year only: the ID number is masked)"),
    "reduced_province": ("（仅省级，因证件号码脱敏）", " (province only: the ID number is masked)"),
    "reduces_year": ("（证件号码脱敏时仅给年份）", " (year only if the ID number is given masked)"),
    "reduces_province": (
        "（证件号码脱敏时仅给省级）",
        " (province only if the ID number is given masked)",
    ),
    "download": ("下载", "Download"),
    "csv_utf8": ("CSV（UTF-8）", "CSV (UTF-8)"),
    "csv_gbk": ("CSV（GBK，旧版 Excel/WPS）", "CSV (GBK, old Excel/WPS)"),
    "xlsx": ("Excel（XLSX）", "Excel (XLSX)"),
    "stats": ("统计", "Statistics"),
    "count_by": ("统计项", "Count by"),
    "count": ("数量", "Count"),
    "suppressed": ("<5", "<5"),
    "stats_rule": (
        "不足 5 的数不显示（<5），其余数字均四舍五入到 5 的倍数，以防推算出个人信息。",
        "Counts under 5 are not shown (<5); all others are rounded to a multiple of 5, so no "
        "one can be singled out.",
    ),
    "requests": ("数据需求", "Data requests"),
    "new_request": ("提出数据需求", "Ask for data"),
    "until": ("需要至", "Needed until"),
    "communities_codes": ("社区编码（逗号分隔，可空）", "Community codes (comma separated)"),
    "grids_codes": ("网格编码（逗号分隔，可空）", "Grid codes (comma separated)"),
    "places_help": ("社区和网格都不填表示全部网格。", "Leave both empty for every grid."),
    "dept_filter_help": (
        "与任务相同的筛选写法，如：年龄 >= 60 and 特殊人群 = 残疾",
        "The tasks' filter syntax, e.g. 年龄 >= 60 and 特殊人群 = 残疾",
    ),
    "ask": ("提交需求", "Send request"),
    "taken": ("取数记录", "What was taken"),
    "export_id": ("导出编号", "Export id"),
    "take_kind": ("方式", "Kind"),
    "kind_download": ("下载", "download"),
    "kind_export": ("接口全量", "API export"),
    "kind_feed": ("接口增量", "API feed"),
    "kind_stats": ("统计", "statistics"),
    "records_n": ("记录数", "Records"),
    "approve": ("批准为授权", "Approve as grant"),
    "refuse": ("拒绝", "Refuse"),
    "to_task": ("转为采集任务", "Collect it first"),
    "fill_rate": ("填报率", "Fill rate"),
    "fill_help": (
        "按前 {n} 条符合条件的记录计算；填报率低说明平台还没有这些数据，可转为采集任务。",
        "Worked out on the first {n} matching records; a low rate means the platform does not "
        "hold the data yet: turn it into a collection task.",
    ),
    "api_keys": ("API 密钥", "API keys"),
    "new_key": ("新建密钥", "New key"),
    "label": ("说明", "Label"),
    "key_once": (
        "新密钥只显示这一次，请立即复制并交给部门：",
        "The new key is shown only this once; copy it now and hand it to the department:",
    ),
    "revoke_grant": ("撤销授权", "Revoke grant"),
    "revoke_key": ("撤销密钥", "Revoke key"),
    "received_by": ("哪些部门获取过此记录", "Departments that received this record"),
    "first_at": ("首次", "First"),
    "last_at": ("最近", "Last"),
    "no_receivers": ("尚无部门获取此记录。", "No department has received this record."),
    "new_department": ("新建或改名部门", "Create or rename a department"),
    "task": ("采集任务", "Collection task"),
    "task_form": ("采集表单", "Form to collect"),
    "only_missing": (
        "只采集所需字段有空缺的记录",
        "Only records missing a requested field",
    ),
}


def words(lang: str) -> dict[str, str]:
    """The UI words in one language, for templates (``t.overview``)."""
    return {key: pick(lang, *pair) for key, pair in WORDS.items()}
