"""The main window (``MainWindow``) and the parts it is made of, one module per concern:
``list_pane`` (lists, search, filters), ``counts`` (tab totals, status bar), ``record_tabs``
(editor and household tabs, crash restore), ``long_work`` (settings, import, export, demo
data) and ``strings`` (its words); ``main_window`` builds them into one window with its menus.
"""

from app.ui.window.list_pane import FORM_TABS
from app.ui.window.main_window import MainWindow

__all__ = ["FORM_TABS", "MainWindow"]
