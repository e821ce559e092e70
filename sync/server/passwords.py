"""The minimum strength of a platform password, with the message saying what to fix.

One rule for ``server-admin add-user``, ``load-demo`` and the console's password reset: at least
``MIN_LENGTH`` characters, at least two kinds of character (letters, digits, anything else:
spaces, punctuation, Chinese), not the user name, and not one of the passwords guessers try
first. A long passphrase of words ("correct horse battery staple") passes; "12345678" does not.
"""

from __future__ import annotations

MIN_LENGTH = 10
# What guessing lists start with (and what people type when asked for 10 characters).
COMMON = frozenset(
    {
        "1234567890",
        "0123456789",
        "12345678910",
        "123456789a",
        "a123456789",
        "1qaz2wsx3edc",
        "qwertyuiop",
        "qwerty1234",
        "password123",
        "password1234",
        "passw0rd123",
        "admin12345",
        "admin123456",
        "abc1234567",
        "abcd123456",
        "iloveyou1314",
        "woaini1314",
        "5201314520",
        "gridcollect",
        "gridcollect1",
    }
)

MESSAGE = (
    f"密码强度不足：至少 {MIN_LENGTH} 个字符，包含字母、数字、其他符号中的至少两类，"
    "不能包含用户名，也不能是常见密码。",
    f"the password is too weak: use at least {MIN_LENGTH} characters of at least two kinds "
    "(letters, digits, other symbols), not containing the user name and not a common password.",
)


def _kinds(password: str) -> int:
    letters = any(c.isalpha() and c.isascii() for c in password)
    digits = any(c.isdigit() for c in password)
    other = any(not (c.isascii() and c.isalnum()) for c in password)
    return letters + digits + other


def is_strong(password: str, username: str = "") -> bool:
    """True when ``password`` meets the minimum; ``username`` may not be inside it."""
    if len(password) < MIN_LENGTH or _kinds(password) < 2:
        return False
    lowered = password.lower()
    if len(username) >= 3 and username.lower() in lowered:
        return False
    return lowered not in COMMON and len(set(password)) > 3


def problem(password: str, username: str = "") -> tuple[str, str] | None:
    """The (zh, en) message when the password is too weak, else None."""
    return None if is_strong(password, username) else MESSAGE
