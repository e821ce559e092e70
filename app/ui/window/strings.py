"""The main window's words, zh and en (registered with ``app.ui.i18n`` on import)."""

from __future__ import annotations

from app.ui.i18n import register

__all__ = []

register(
    {
        "main.title": ("网格采集", "GridCollect"),
        "main.tab.resident": ("居民", "Residents"),
        "main.tab.house": ("房屋", "Houses"),
        "main.tab.unit": ("单位", "Units"),
        "main.tab.address": ("地址", "Addresses"),
        "main.search": (
            "搜索姓名、拼音首字母、证件号或电话尾号、地址（Ctrl+F）",
            "Search name, pinyin initials, ID or phone tail, address (Ctrl+F)",
        ),
        "main.status_any": ("全部状态", "Any status"),
        "main.dirty": ("待同步", "Pending sync"),
        "main.conflict": ("冲突", "Conflict"),
        "main.dup": ("疑似重复", "Possible duplicate"),
        "main.new": ("新建", "New"),
        "main.menu.file": ("文件(&F)", "&File"),
        "main.menu.view": ("视图(&V)", "&View"),
        "main.menu.help": ("帮助(&H)", "&Help"),
        "main.menu.sync": ("同步(&S)", "&Sync"),
        "main.menu.print": ("打印(&P)", "&Print"),
        "main.menu.lang": ("语言(&L)", "&Language"),
        # every menu entry with its Alt key: "(&N)" after Chinese, "&" inside English
        "main.act.new": ("新建记录(&N)", "&New record"),
        "main.act.import": ("导入(&I)…", "&Import…"),
        "main.act.export": ("导出(&E)…", "&Export…"),
        "main.act.demo": ("生成演示数据(&D)…", "&Demo data…"),
        "main.act.settings": ("设置(&S)…", "&Settings…"),
        "main.act.quit": ("退出(&Q)", "&Quit"),
        "main.act.about": ("关于(&A)", "&About"),
        "main.act.touch": ("触屏模式(&T)", "&Touch mode"),
        "main.act.sync": ("与平台同步(&Y)…", "S&ync with the platform…"),
        "main.act.conflicts": ("冲突(&C)…", "&Conflicts…"),
        "main.act.refusals": ("被拒的修改(&F)…", "Re&fused edits…"),
        "main.act.reviews": ("重复审核(&R)…", "Duplicate &review…"),
        "main.act.print_preview": (
            "打印预览当前记录(&V)…",
            "Print pre&view of the current record…",
        ),
        "main.act.print_household": ("打印本户(&H)…", "Print this &household…"),
        "main.act.print_labels": ("门牌标签(&L)…", "Door-plate &labels…"),
        "main.act.scan": ("扫码(&M)…", "Sca&n…"),
        "main.act.lang_zh": ("中文(&Z)", "中文 (&Z)"),
        "main.act.lang_en": ("English(&E)", "&English"),
        "main.pending": ("待同步 {n}", "{n} to sync"),
        "main.last_sync": ("上次同步 {at}", "Last sync {at}"),
        "main.never_synced": ("从未同步", "never synced"),
        "main.conflicts": ("冲突 {n}", "{n} conflicts"),
        "main.worker": ("采集员 {name}", "Worker {name}"),
        "main.unsaved_item": ("{title}（{form}）", "{title} ({form})"),
        "main.quit_unsaved": (
            "以下 {n} 条记录有未保存的更改，要先保存为草稿吗？",
            "{n} record(s) have unsaved changes. Save them as drafts first?",
        ),
        "main.quit_save": ("全部保存为草稿", "Save all as drafts"),
        "main.no_worker": ("未设置采集员（文件→设置）", "No worker set (File → Settings)"),
        "main.shown": ("显示 {n} 条", "{n} shown"),
        "main.shown_more": ("已显示 {n} 条，滚动加载更多", "{n} shown, scroll for more"),
        "main.counting": ("…", "…"),
        "main.searching": ("正在查找…", "Searching…"),
        "main.household": ("户：{title}", "Household: {title}"),
        "main.restore_title": ("恢复未保存的表单", "Restore unsaved forms"),
        "main.restore_text": (
            "上次退出时有 {n} 个表单未保存。要恢复它们吗？",
            "{n} form(s) were not saved when the app last closed. Restore them?",
        ),
        "main.restore": ("恢复", "Restore"),
        "main.later": ("以后再说", "Later"),
        "main.import_form": ("导入到哪个表单：", "Import into which form:"),
        "main.import_title": ("导入", "Import"),
        "main.import_filter": ("表格 (*.csv *.xlsx *.json)", "Tables (*.csv *.xlsx *.json)"),
        "main.importing": ("正在导入…", "Importing…"),
        "main.import_done": (
            "导入完成：新建 {created}，更新 {updated}，拒绝 {rejected} 行。",
            "Imported: {created} created, {updated} updated, {rejected} rows rejected.",
        ),
        "main.import_none": (
            "未导入任何记录：请先修正文件中的问题。",
            "Nothing imported: fix the problems in the file first.",
        ),
        "main.export_title": ("导出", "Export"),
        "main.export_filter": ("Excel (*.xlsx);;CSV (*.csv)", "Excel (*.xlsx);;CSV (*.csv)"),
        "main.exporting": ("正在导出…", "Exporting…"),
        "main.export_done": (
            "已导出 {n} 条记录（敏感信息已遮盖）。",
            "Exported {n} records (sensitive values masked).",
        ),
        "main.demo_title": ("生成演示数据", "Demo data"),
        "main.demo_size": ("大约多少条记录：", "About how many records:"),
        "main.demo_running": ("正在生成演示社区…", "Creating the demo community…"),
        "main.demo_done": ("演示社区已生成：{counts}", "Demo community created: {counts}"),
        "main.cancelled": ("已取消。", "Cancelled."),
        "main.cancelled_rollback": ("已取消，未导入任何记录。", "Cancelled; nothing was imported."),
        "main.failed": ("未完成：{message}", "Did not finish: {message}"),
        "main.about": (
            "网格采集 GridCollect：一标三实离线采集。\n数据文件：{path}",
            "GridCollect: offline collection of addresses, residents, houses and units.\n"
            "Data file: {path}",
        ),
        "main.empty": (
            "在左侧选择网格或楼栋，双击列表中的记录打开（回车也可以）。",
            "Pick a grid or building on the left; double-click a record (or press Enter).",
        ),
    }
)
