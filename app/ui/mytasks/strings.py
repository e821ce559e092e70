"""The 我的任务 view's words, zh and en (registered with ``app.ui.i18n`` on import)."""

from __future__ import annotations

from app.core.store import UNABLE_REASONS
from app.ui.i18n import register

__all__: list[str] = []

register(
    {
        "tasks.title": ("我的任务", "My tasks"),
        "tasks.button": ("我的任务（{n}）", "My tasks ({n})"),
        "tasks.menu": ("我的任务(&M)…", "&My tasks…"),
        "tasks.button_tip": (
            "平台下达的任务；括号内为待办条目数",
            "Tasks from the platform; the number is the open items",
        ),
        "tasks.col.title": ("任务", "Task"),
        "tasks.col.due": ("截止", "Due"),
        "tasks.col.priority": ("优先级", "Priority"),
        "tasks.col.progress": ("进度", "Progress"),
        "tasks.col.state": ("状态", "State"),
        "tasks.priority.0": ("普通", "Normal"),
        "tasks.priority.1": ("高", "High"),
        "tasks.priority.2": ("紧急", "Urgent"),
        "tasks.state.open": ("进行中", "Open"),
        "tasks.state.closed": ("已完成", "Closed"),
        "tasks.state.overdue": ("已逾期", "Overdue"),
        "tasks.no_due": ("无", "None"),
        "tasks.empty": (
            "暂无任务。同步后平台下达的任务会出现在这里。",
            "No tasks. Tasks from the platform appear here after a sync.",
        ),
        "tasks.kind.verify": ("核实", "Verify"),
        "tasks.kind.collect": ("采集", "Collect"),
        "tasks.back": ("← 返回任务列表", "← Back to tasks"),
        "tasks.fields": ("需核实/填写：{fields}", "Check or fill: {fields}"),
        "tasks.summary": (
            "共 {total} 条：已完成 {done}，无法完成 {unable}，待办 {open}",
            "{total} items: {done} done, {unable} unable, {open} open",
        ),
        "tasks.collect_summary": (
            "已采集 {done} 条（目标 {target}）",
            "{done} collected (target {target})",
        ),
        "tasks.col.building": ("楼栋", "Building"),
        "tasks.col.house": ("房屋", "House"),
        "tasks.col.record": ("记录", "Record"),
        "tasks.item.open": ("待办", "Open"),
        "tasks.item.done": ("已完成", "Done"),
        "tasks.item.unable": ("无法完成：{reason}", "Unable: {reason}"),
        "tasks.item.pending": ("（待同步）", " (not synced)"),
        "tasks.item.missing": (
            "（记录不在本机）",
            "(record not on this device)",
        ),
        "tasks.open_item": ("打开记录", "Open record"),
        "tasks.unable": ("无法完成…", "Unable…"),
        "tasks.other": ("其他原因…", "Other…"),
        "tasks.other_ok": ("确定", "OK"),
        "tasks.other_hint": ("请填写原因（最多200字）", "Type the reason (at most 200 characters)"),
        "tasks.already_done": (
            "这一条已完成，无需标记无法完成",
            "This item is done; it needs no unable mark",
        ),
        "tasks.pick_item": ("请先选择一个条目", "Select an item first"),
        "tasks.new_record": ("新建{form}", "New {form}"),
        "tasks.cancelled": ("这个任务已被撤销", "This task was cancelled"),
        "tasks.withdrawn": (
            "这个任务已不再由您负责（网格已调整或已改派他人）",
            "This task is no longer yours (your grids changed or it went to someone else)",
        ),
        "tasks.marked": ("已标记：{state}", "Marked: {state}"),
        **{f"tasks.reason.{zh}": (zh, en) for zh, en in UNABLE_REASONS},
    }
)
