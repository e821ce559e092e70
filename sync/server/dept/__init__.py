"""Departments take data on demand (按需取数据): grants, requests, API keys, exports, the feed,
statistics and the trace of every taking (PROTOCOL.md §14).

``grants`` (what a department may take), ``shape`` (a grant applied to one record), ``keys``
(department API keys), ``take`` (export pages, feed pages, who received what), ``files`` (CSV and
XLSX downloads), ``stats`` (counts with small cells suppressed), ``asks`` (requests) and
``trace`` (the audit rows). Routes: ``sync/server/routes/dept.py`` and the console's
``dept_pages``.
"""
