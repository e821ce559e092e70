"""Lists in the order a worker reads them (issue 16 item 4), with real widgets: residents by
the pinyin of their names, houses and addresses by room order (numbers as numbers)."""

from __future__ import annotations

from typing import Any

from app.core.store import Grid, Store
from app.ui.window import MainWindow
from tests.factories import resident

GRID = "330106001001"
STREET = "浙江省杭州市西湖区清溪街道云溪社区秋实路18号听涛雅苑"
ROOMS = ("10栋1单元101", "1栋1单元1001", "2栋1单元201", "1栋1单元201", "1栋2单元101")


def test_the_lists_show_pinyin_and_room_order(qtbot: Any, store: Store) -> None:
    store.put_grid(Grid(GRID, "第一网格", "330106001", "云溪社区"))
    for seq, name in enumerate(("张三", "李四", "王五", "赵六", "阿明"), start=1):
        store.save("resident", resident(name=name, seq=seq, grid=GRID))
    for room in ROOMS:
        address = f"{STREET}{room}室"
        store.save("house", {"house_code": room, "address_text": address, "grid": GRID})
        store.save("address", {"address_code": room, "full_address": address, "grid": GRID})
    window = MainWindow(store, lang="zh", restore_autosaves=False)
    qtbot.addWidget(window)
    window.resize(1366, 768)
    window.show()
    qtbot.waitExposed(window)

    def shown(form: str) -> list[str]:
        window.list_tabs.setCurrentIndex(list(window.views).index(form))
        model = window.views[form].model()
        qtbot.waitUntil(lambda: model.rowCount() == 5)
        return [model.index(r, 0).data() for r in range(model.rowCount())]

    assert shown("resident") == ["阿明", "李四", "王五", "张三", "赵六"]
    rooms = ["听涛雅苑1栋1单元201室", "听涛雅苑1栋1单元1001室", "听涛雅苑1栋2单元101室"]
    rooms += ["听涛雅苑2栋1单元201室", "听涛雅苑10栋1单元101室"]
    assert shown("house") == rooms
    assert shown("address") == rooms
    window.close()
