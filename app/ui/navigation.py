"""The navigation tree: community -> grid -> building -> house, children fetched on expand.

Communities and grids come from the grid table (small). Buildings and houses come from house
records and are only asked for when a grid or building is expanded, so opening a 1.63 M-record
data dir costs one small query here. Selecting a node emits the list scope; activating a
house asks for its household view.
"""

from __future__ import annotations

from collections.abc import Iterable

from PySide6.QtCore import QModelIndex, Qt, Signal
from PySide6.QtGui import QFont, QStandardItem, QStandardItemModel
from PySide6.QtWidgets import QAbstractItemView, QTreeView, QWidget

from app.core.store import Store, browse
from app.core.store.browse import Scope
from app.ui.i18n import register, tr

KIND_ROLE = Qt.ItemDataRole.UserRole + 10
KEY_ROLE = Qt.ItemDataRole.UserRole + 11
GRID_ROLE = Qt.ItemDataRole.UserRole + 12
LOADED_ROLE = Qt.ItemDataRole.UserRole + 13
COUNT_ROLE = Qt.ItemDataRole.UserRole + 14

ALL, MINE, OTHER, COMMUNITY, GRID, BUILDING, HOUSE, PLACEHOLDER = (
    "all",
    "mine",
    "other",
    "community",
    "grid",
    "building",
    "house",
    "placeholder",
)
register(
    {
        "nav." + ALL: ("全部", "All"),
        "nav." + MINE: ("我的网格", "My grids"),
        "nav." + OTHER: ("其他网格", "Other grids"),
        "nav.no_building": ("（未填楼栋）", "(no building)"),
        "nav.loading": ("…", "…"),
        "nav.houses": ("户", "houses"),
    }
)


class NavigationTree(QTreeView):
    """Tree of where records are; emits a scope on selection and a house on activation."""

    scopeSelected = Signal(object)  # browse.Scope
    houseActivated = Signal(str)  # house record id

    def __init__(self, store: Store, lang: str = "zh", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("navigationTree")
        self.store, self.lang = store, lang
        self.assigned: tuple[str, ...] = ()
        self._undefined: list[str] = []
        self.tree_model = QStandardItemModel(self)
        self.setModel(self.tree_model)
        self.setHeaderHidden(True)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setUniformRowHeights(True)
        self.expanded.connect(self._on_expanded)
        self.activated.connect(self._on_activated)
        self.selectionModel().currentChanged.connect(self._on_current)
        self.rebuild()

    # -- building the tree -----------------------------------------------------------------

    def rebuild(self) -> None:
        """(Re)read communities and grids; expanded buildings are fetched again on expand.

        Quietly: the lists keep their scope, and the same community or grid stays selected
        when it still exists (rebuilding must not change what the worker is looking at).
        """
        current = self.currentIndex()
        keep = (current.data(KIND_ROLE), current.data(KEY_ROLE)) if current.isValid() else None
        selection = self.selectionModel()
        selection.blockSignals(True)
        try:
            self._populate()
            if keep is not None:
                self._reselect(*keep)
            else:
                self.setCurrentIndex(QModelIndex())
        finally:
            selection.blockSignals(False)

    def _reselect(self, kind: str, key: object) -> None:
        index = self.find(kind, key)
        if not index.isValid() and kind == GRID:
            for row in range(self.tree_model.rowCount()):
                index = self.find(kind, key, self.tree_model.index(row, 0))
                if index.isValid():
                    break
        self.setCurrentIndex(index)

    def _populate(self) -> None:
        self.tree_model.clear()
        root = self.tree_model.invisibleRootItem()
        root.appendRow(self._item(tr("nav." + ALL, self.lang), ALL, None))
        if self.assigned:
            root.appendRow(self._item(tr("nav." + MINE, self.lang), MINE, None))
        for community in browse.communities(self.store):
            item = self._item(community.name, COMMUNITY, community.code)
            item.setData(tuple(code for code, _ in community.grids), GRID_ROLE)
            for code, name in community.grids:
                item.appendRow(self._grid_item(code, name))
            root.appendRow(item)
        if self._undefined:
            other = self._item(tr("nav." + OTHER, self.lang), OTHER, None)
            for code in self._undefined:
                other.appendRow(self._grid_item(code, code))
            root.appendRow(other)

    def _item(self, text: str, kind: str, key: object) -> QStandardItem:
        item = QStandardItem(text)
        item.setData(kind, KIND_ROLE)
        item.setData(key, KEY_ROLE)
        item.setToolTip(str(key) if key else text)
        return item

    def _grid_item(self, code: str, name: str) -> QStandardItem:
        item = self._item(("★ " if code in self.assigned else "") + name, GRID, code)
        item.setData(code, GRID_ROLE)
        if code in self.assigned:
            font = QFont(item.font())
            font.setBold(True)
            item.setFont(font)
        item.appendRow(self._item(tr("nav.loading", self.lang), PLACEHOLDER, None))
        return item

    def set_assigned(self, grids: Iterable[str]) -> None:
        """Mark the worker's grids (bold, ★) and offer a "my grids" node."""
        self.assigned = tuple(grids)
        self.rebuild()

    def set_undefined_grids(self, grids: list[str]) -> None:
        """Grids used by records but missing from the grid table (found by a background task)."""
        if grids != self._undefined:
            self._undefined = list(grids)
            self.rebuild()

    def set_lang(self, lang: str) -> None:
        self.lang = lang
        for item in self._walk(self.tree_model.invisibleRootItem()):
            kind = item.data(KIND_ROLE)
            if kind in (ALL, MINE, OTHER):
                item.setText(tr("nav." + kind, lang))
            elif kind == BUILDING and not item.data(KEY_ROLE):
                item.setText(self._building_text("", item.data(COUNT_ROLE) or 0))

    def _walk(self, parent: QStandardItem) -> Iterable[QStandardItem]:
        for row in range(parent.rowCount()):
            child = parent.child(row)
            yield child
            yield from self._walk(child)

    # -- lazy children ---------------------------------------------------------------------

    def _on_expanded(self, index: QModelIndex) -> None:
        item = self.tree_model.itemFromIndex(index)
        if item is None or item.data(LOADED_ROLE):
            return
        kind = item.data(KIND_ROLE)
        if kind == GRID:
            self._fill(
                item,
                [
                    self._building_item(item.data(GRID_ROLE), b)
                    for b in browse.buildings(self.store, item.data(GRID_ROLE))
                ],
            )
        elif kind == BUILDING:
            grid, name = item.data(GRID_ROLE), item.data(KEY_ROLE)
            self._fill(
                item,
                [self._house_item(grid, h, name) for h in browse.houses(self.store, grid, name)],
            )

    def _fill(self, item: QStandardItem, children: list[QStandardItem]) -> None:
        item.removeRows(0, item.rowCount())
        for child in children:
            item.appendRow(child)
        item.setData(True, LOADED_ROLE)

    def _building_text(self, name: str, houses: int) -> str:
        label = name or tr("nav.no_building", self.lang)
        return f"{label}  ({houses})"

    def _building_item(self, grid: str, building: browse.Building) -> QStandardItem:
        item = self._item(
            self._building_text(building.name, building.houses), BUILDING, building.name
        )
        item.setData(grid, GRID_ROLE)
        item.setData(building.houses, COUNT_ROLE)
        item.appendRow(self._item(tr("nav.loading", self.lang), PLACEHOLDER, None))
        return item

    def _house_item(self, grid: str, house: browse.HouseNode, building: str) -> QStandardItem:
        item = self._item(_short_title(house.title, building), HOUSE, house.id)
        item.setToolTip(house.title)
        item.setData(grid, GRID_ROLE)
        return item

    # -- selection -------------------------------------------------------------------------

    def scope_of(self, index: QModelIndex) -> Scope | None:
        """The list scope a node stands for (None for placeholders)."""
        kind, key, grid = index.data(KIND_ROLE), index.data(KEY_ROLE), index.data(GRID_ROLE)
        if kind == ALL:
            return Scope()
        if kind == MINE:
            return Scope(grids=self.assigned)
        if kind == COMMUNITY:
            return Scope(grids=tuple(grid or ()))
        if kind == OTHER:
            return Scope(grids=tuple(self._undefined))
        if kind == GRID:
            return Scope(grids=(key,))
        if kind in (BUILDING, HOUSE):
            building = key if kind == BUILDING else index.parent().data(KEY_ROLE)
            return Scope(grids=(grid,), building=building or "")
        return None

    def _on_current(self, current: QModelIndex, _previous: QModelIndex) -> None:
        scope = self.scope_of(current) if current.isValid() else None
        if scope is not None:
            self.scopeSelected.emit(scope)
        if current.isValid() and current.data(KIND_ROLE) == HOUSE:
            self.houseActivated.emit(str(current.data(KEY_ROLE)))

    def _on_activated(self, index: QModelIndex) -> None:
        if index.data(KIND_ROLE) == HOUSE:
            self.houseActivated.emit(str(index.data(KEY_ROLE)))

    # -- helpers for keyboard users and tests ----------------------------------------------

    def find(self, kind: str, key: object, parent: QModelIndex | None = None) -> QModelIndex:
        """The first node of ``kind`` with ``key`` under ``parent`` (expanding as needed)."""
        parent = parent or QModelIndex()
        for row in range(self.tree_model.rowCount(parent)):
            index = self.tree_model.index(row, 0, parent)
            if index.data(KIND_ROLE) == kind and index.data(KEY_ROLE) == key:
                return index
        return QModelIndex()

    def select(self, index: QModelIndex) -> None:
        """Make ``index`` current (as a click would) and expand it (fetching its children)."""
        self.setCurrentIndex(index)
        self.expand(index)


def _short_title(title: str, building: str) -> str:
    """A house under its building node needs only what follows the building: "2单元501室"."""
    if building and building in title:
        rest = title[title.rindex(building) + len(building) :].strip(" ,，")
        if rest:
            return rest
    return title
