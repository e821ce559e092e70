"""Screenshots of the real app on the demo community, for the README.

Usage: python tools/screenshots.py [--out docs/screenshots] [--data-dir DIR] [--size 3000]
[--only app|tasks]

Starts the real main window offscreen (QT_QPA_PLATFORM=offscreen) on a demo data dir
(created with ``app.core.demo.generate`` when missing), drives it the way a worker would and
saves ``QWidget.grab()`` PNGs. Needs a CJK font (Debian: fonts-noto-cjk; ``./dev setup``
installs it); without one the Chinese text renders as boxes, so the script refuses to run.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from PySide6.QtGui import QFont, QFontDatabase  # noqa: E402
from PySide6.QtWidgets import QApplication, QScrollArea, QWidget  # noqa: E402

from app.core.store import Store  # noqa: E402

SIZE = (1366, 768)  # the commonest office laptop: what workers really see
TOUCH_SIZE = (1280, 800)  # a 10-inch tablet in landscape, touch mode
CJK_FAMILIES = ("Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC", "WenQuanYi Micro Hei")


def pump(app: QApplication, seconds: float = 0.3, until: Callable[[], bool] | None = None) -> None:
    """Let Qt lay out, paint and deliver background results."""
    deadline = time.monotonic() + (10.0 if until else seconds)
    while time.monotonic() < deadline:
        app.processEvents()
        if until is not None and until():
            app.processEvents()
            return
        time.sleep(0.01)


def cjk_font(app: QApplication) -> None:
    families = set(QFontDatabase.families())
    family = next((f for f in CJK_FAMILIES if f in families), None)
    if family is None:
        raise SystemExit("no CJK font found (install fonts-noto-cjk, or run ./dev setup)")
    app.setFont(QFont(family, 10))


def demo_store(data_dir: Path, size: int) -> Store:
    from app.core.demo import generate

    # a throwaway demo dir: the store is encrypted like any other, with a random passphrase
    # written beside it (as ``gridcollect demo`` does), so the script needs no one to type it
    store = Store.open(data_dir, demo_notice=lambda _path: None)
    if store.count() == 0:
        print(f"generating a demo community of about {size} records in {data_dir} …")
        generate(store, size=size, seed=7)
    return store


def save(widget: QWidget, out: Path, name: str, app: QApplication) -> None:
    pump(app)
    path = out / f"{name}.png"
    if not widget.grab().save(str(path)):
        raise SystemExit(f"could not write {path}")
    print(f"  {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")


def _first(store: Store, form: str, test: Callable[[dict], bool]):  # noqa: ANN202
    return next((r for r in store.iter_records(form) if test(r.data)), None)


def shoot(store: Store, out: Path, app: QApplication) -> None:
    from app.ui import navigation as nav
    from app.ui.settings import Settings
    from app.ui.window import MainWindow

    window = MainWindow(store, lang="zh", restore_autosaves=False)
    first_grid = store.grids()[0].code if store.grids() else None
    window.apply_settings(
        Settings(
            worker_name="演示采集员",
            worker_id="demo01",
            assigned_grids=(first_grid,) if first_grid else (),
        )
    )
    window.resize(*SIZE)
    window.show()
    counts_ready = lambda: window.counts_settled and window._status_counts is not None  # noqa: E731
    pump(app, until=counts_ready)

    # 1. the resident list of one grid, with the tree open down to a building's houses
    tree = window.navigation
    community = tree.find(nav.COMMUNITY, store.grids()[0].community_code)
    tree.expand(community)
    grid = tree.tree_model.index(0, 0, community)
    tree.select(grid)
    building = tree.tree_model.index(0, 0, grid)
    tree.expand(building)
    pump(app, until=counts_ready)
    save(window, out, "main-window", app)

    # 2. search by pinyin initials: a resident's initials typed into the search box
    person = _first(store, "resident", lambda d: len(str(d.get("name", ""))) == 3)
    tree.select(tree.find(nav.ALL, None))
    if person is not None:
        from pypinyin import Style, lazy_pinyin

        initials = "".join(s[0] for s in lazy_pinyin(person.data["name"], style=Style.NORMAL))
        window.search_box.setFocus()
        window.search_box.setText(initials)
        window.apply_search()
        pump(app, until=lambda: not window.current_model().loading)
        save(window, out, "search-pinyin-initials", app)
        window.search_box.clear()
        window.apply_search()

    # 3. a migrant resident: the 流动人口 block is shown
    migrant = _first(store, "resident", lambda d: d.get("population_type") == "2")
    if migrant is not None:
        window.open_record(migrant.id)
        editor = window.doc_tabs.currentWidget()
        pump(app)
        section = next(s for s in store.formset.form("resident").sections if s.id == "migrant")
        scroll = editor.findChild(QScrollArea)
        if scroll is not None:  # bring the block into view: its last field, then its first
            scroll.ensureWidgetVisible(editor.widget(section.fields[-1].id), 0, 40)
            scroll.ensureWidgetVisible(editor.widget(section.fields[0].id), 0, 120)
        save(window, out, "editor-migrant-block", app)
        editor.request_close()

    # 4. the duplicate guard: typing an ID number that is already registered
    known = _first(store, "resident", lambda d: d.get("id_type") == "111" and d.get("id_number"))
    if known is not None:
        editor = window.new_record("resident")
        editor.set_value("id_number", known.data["id_number"])
        editor.run_duplicate_check()
        save(window, out, "duplicate-banner", app)
        editor.confirm_close = lambda e: "discard"
        editor.request_close()

    # 5. a household: the house with the most residents among the first houses
    best, members = None, -1
    for house in list(store.iter_records("house"))[:200]:
        n = len(store.referrers(house.id, "house_ref"))
        if n > members:
            best, members = house, n
    if best is not None:
        view = window.open_household(best.id)
        if view is not None and view.member_ids():
            view.select_member(view.member_ids()[0])
        save(window, out, "household", app)

    # 6. touch mode (large targets and fonts) on a tablet, the household open
    window.set_touch_mode(True)
    window.resize(*TOUCH_SIZE)
    if best is not None:
        window.open_household(best.id)
    pump(app, 0.5)
    save(window, out, "touch-mode", app)
    window.set_touch_mode(False)
    window.resize(*SIZE)

    # 7. the first-run start page of an empty data dir
    from app.ui.start_page import StartPage

    with tempfile.TemporaryDirectory(prefix="gridcollect-empty-") as empty:
        blank = Store.open(empty, demo_notice=lambda _path: None)
        page = StartPage(blank, "zh")
        page.show()
        save(page, out, "start-page", app)
        page.close()
        blank.close()

    # 8. English, switched at runtime
    window.set_language("en")
    pump(app, until=counts_ready)
    save(window, out, "english", app)
    window.set_language("zh")
    window.close()


def demo_tasks(store: Store) -> None:
    """Tasks as a pull would bring them (the demo has no platform): verify the phones of the
    first grid's 流动人口 (some done, one unable), an overdue one, and a collect task."""
    from app.core.store import Task, TaskItem

    grid = store.grids()[0].code
    migrants = [
        r
        for r in store.iter_records("resident")
        if r.grid == grid and r.data.get("population_type") == "2"
    ][:12]
    stamp = "2026-01-05T08:00:00Z"
    tasks = [
        Task(
            "demo-phone",
            "verify",
            "核实流动人口电话",
            "resident",
            ("phone", "residence_address"),
            "open",
            stamp,
            stamp,
            "逐户核实联系电话和现住详址",
            "2099-12-31",
            1,
            (grid,),
            "社区网格长",
        ),
        Task(
            "demo-permit",
            "verify",
            "补录居住证件号码",
            "resident",
            ("permit_number",),
            "open",
            stamp,
            stamp,
            "",
            "2026-01-31",
            2,
            (grid,),
            "社区网格长",
        ),
        Task(
            "demo-market",
            "collect",
            "登记新市场的单位",
            "unit",
            (),
            "open",
            stamp,
            stamp,
            "新建农贸市场内的商户逐一登记",
            "2099-06-30",
            0,
            (grid,),
            "街道综治办",
            20,
        ),
    ]
    store.tasks.put_tasks(tasks)
    items = [
        TaskItem(f"demo-i{n}", "demo-phone", r.id, "open", stamp, grid)
        for n, r in enumerate(migrants)
    ]
    items += [
        TaskItem(f"demo-p{n}", "demo-permit", r.id, "open", stamp, grid)
        for n, r in enumerate(migrants[:5])
    ]
    store.tasks.put_items(items)
    for item in items[:4]:
        store.tasks.mark_done(item.id, "演示采集员")
    if len(items) > 5:
        store.tasks.mark_unable(items[5].id, "查无此人", "演示采集员")


def shoot_tasks(store: Store, out: Path, app: QApplication) -> None:
    """我的任务: the task list with progress bars, then one task's items door to door."""
    from app.ui.window import MainWindow

    if not store.tasks.views():
        demo_tasks(store)
    window = MainWindow(store, lang="zh", restore_autosaves=False)
    window.resize(*SIZE)
    window.show()
    pump(app, until=lambda: window.counts_settled)
    view = window.my_tasks.open()
    window.splitter.setSizes([200, 500, 900])
    save(window, out, "my-tasks", app)
    view.open_task("demo-phone")
    view.item_table.selectRow(5)
    view.unable_panel.open()
    save(window, out, "my-tasks-items", app)
    window.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "docs" / "screenshots"))
    parser.add_argument("--data-dir", help="demo data dir (default: a fresh temporary one)")
    parser.add_argument("--size", type=int, default=3000, help="demo size when generating")
    parser.add_argument("--only", choices=("app", "tasks"), help="only these shots")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    app = QApplication.instance() or QApplication(sys.argv[:1])
    cjk_font(app)
    with tempfile.TemporaryDirectory(prefix="gridcollect-shots-") as tmp:
        data_dir = Path(args.data_dir) if args.data_dir else Path(tmp)
        store = demo_store(data_dir, args.size)
        try:
            if args.only in (None, "app"):
                shoot(store, out, app)
            if args.only in (None, "tasks"):
                shoot_tasks(store, out, app)
        finally:
            store.close()


if __name__ == "__main__":
    main()
