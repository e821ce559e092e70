"""What ``gridcollect sync`` checks before it sends a password anywhere.

A password and every record travel in the clear over ``http://``: that is only acceptable to
this machine itself (a server on loopback), or when the operator says so with ``--insecure``.
A password file others may read (or write: then they choose what is sent) is refused, as ssh
refuses a private key others can read. Each check returns a (zh, en) reason, or None.
"""

from __future__ import annotations

import ipaddress
import os
import stat
from pathlib import Path
from urllib.parse import urlsplit

Reason = tuple[str, str]


def is_loopback(host: str) -> bool:
    """True for localhost and loopback addresses (127.0.0.0/8, ::1)."""
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def url_problem(url: str, insecure: bool = False) -> Reason | None:
    """Why a server URL is refused: not http(s), or plain http to another machine."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return (
            "平台地址须以 https:// 开头，如 https://grid.example.cn。",
            "the server URL must start with https://, e.g. https://grid.example.cn.",
        )
    if parts.scheme == "http" and not insecure and not is_loopback(parts.hostname):
        return (
            "拒绝以 http:// 连接其他计算机（密码和数据将以明文传输）：请使用 https://，"
            "或确认网络可信后加 --insecure。",
            "refusing http:// to another machine (the password and data would travel in "
            "clear): use https://, or add --insecure if you trust the network.",
        )
    return None


def password_file_problem(path: str | Path) -> Reason | None:
    """Why a password file is refused (POSIX): others may read or write it."""
    if os.name != "posix":
        return None
    try:
        mode = Path(path).expanduser().stat().st_mode
    except OSError:
        return None  # reading it reports a missing file
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        return (
            f"密码文件 {path} 可被其他用户读取或修改，已拒绝：请运行 chmod 600 {path}。",
            f"the password file {path} can be read or changed by other users; refused: "
            f"run chmod 600 {path}.",
        )
    return None
