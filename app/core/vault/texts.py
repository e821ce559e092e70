"""The texts of the store's encryption (passphrase, key file, keyring), Chinese first.

A ``messages.Catalog`` like every other: the CLI prints them, the passphrase dialog shows them.
Params are file paths and counts, never a passphrase.
"""

from __future__ import annotations

from app.core.messages import Catalog

TEXTS = Catalog(
    {
        "file_open_to_others": (
            "口令文件 {path} 可被其他用户读取或写入，请先执行 chmod 600 {path}。",
            "the passphrase file {path} is readable or writable by other users; "
            "run chmod 600 {path} first.",
        ),
        "file_unreadable": (
            "无法读取口令文件 {path}（不存在、不可读或为空）。",
            "cannot read the passphrase file {path} (missing, unreadable or empty).",
        ),
        "needed": (
            "数据目录已加密，需要口令：请用 --passphrase-file 文件、环境变量 "
            "GRIDCOLLECT_PASSPHRASE_FILE，或先执行 gridcollect passphrase keyring on。",
            "the data dir is encrypted and needs its passphrase: give --passphrase-file FILE, "
            "set GRIDCOLLECT_PASSPHRASE_FILE, or run gridcollect passphrase keyring on first.",
        ),
        "setup_needed": (
            "数据目录尚未设置口令：请用 --passphrase-file 文件（或环境变量 "
            "GRIDCOLLECT_PASSPHRASE_FILE）给出新口令，或先启动桌面程序设置。",
            "the data dir has no passphrase yet: give a new one with --passphrase-file FILE "
            "(or GRIDCOLLECT_PASSPHRASE_FILE), or start the desktop app to set one.",
        ),
        "wrong": ("口令不正确，请重试。", "wrong passphrase; please try again."),
        "wrong_file": (
            "口令文件 {path} 中的口令不正确。",
            "wrong passphrase in the file {path}.",
        ),
        "wrong_env": (
            "环境变量 {var} 指向的口令文件 {path} 中的口令不正确（更换口令后未更新该文件？）。",
            "wrong passphrase in the file {path} named by {var} (not updated after a passphrase "
            "change?).",
        ),
        "too_short": (
            "口令至少需要 {min} 个字符，请加长。",
            "the passphrase needs at least {min} characters; please make it longer.",
        ),
        "mismatch": (
            "两次输入的口令不一致，请重新输入。",
            "the two passphrases differ; type them again.",
        ),
        "key_file_bad": (
            "密钥文件 {path} 损坏或不是网格采集的密钥文件；请从备份恢复。",
            "the key file {path} is damaged or not a GridCollect key file; restore it from a backup.",
        ),
        "key_file_missing": (
            "数据已加密，但密钥文件 {path} 不见了：请从备份恢复该文件（新设的口令无法打开这些数据）。",
            "the data is encrypted but its key file {path} is missing: restore it from a backup "
            "(a new passphrase cannot open this data).",
        ),
        "keyring_unavailable": (
            "系统钥匙串不可用（未安装、已锁定或没有本数据目录的条目）。",
            "the OS keyring is not available (none installed, locked, or no entry for this data dir).",
        ),
        "demo_notice": (
            "演示数据目录的口令已写入 {path}（仅限演示数据：放入真实数据前，请用 "
            "gridcollect passphrase change 换成自己的口令，该文件随之删除）。",
            "the demo data dir's passphrase was written to {path} (demo data only: before real "
            "data goes in, run gridcollect passphrase change to choose your own; the file is "
            "then deleted).",
        ),
        "changed": (
            "口令已更换（数据无需重新加密）。",
            "passphrase changed (the data was not re-encrypted).",
        ),
        "keyring_on": (
            "已在系统钥匙串中保存解锁密钥：本机本用户可无人值守同步。",
            "the unlock key is now in the OS keyring: this OS user can sync unattended.",
        ),
        "keyring_off": (
            "已从系统钥匙串删除解锁密钥。",
            "the unlock key was removed from the OS keyring.",
        ),
        "strength_weak": ("强度：弱", "strength: weak"),
        "strength_fair": ("强度：一般", "strength: fair"),
        "strength_good": ("强度：强", "strength: good"),
    }
)
