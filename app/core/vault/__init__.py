"""Encryption at rest for the device store: the key file, the passphrase and the keyring.

``keyfile`` is the file format (a random data key wrapped by a passphrase-derived key and,
optionally, by a secret in the OS keyring); ``keys`` sets up, unlocks and re-wraps it and keeps
unlocked keys for this process; ``sources`` reads a passphrase from a strict file, the
environment or the keyring; ``encrypt`` migrates a plaintext store in place; ``perms`` keeps
the data dir 0700 and its files 0600 on POSIX. Nothing here imports Qt or talks to a network.
"""
