"""Transitional: moved to deconflict.record.signing; deleted when every import uses the new home."""

from deconflict.record.signing import (
    ALGORITHM,
    DEMO_CUSTODY,
    KEY_FILE_HEADER,
    PARTY_CUSTODY,
    KeyPair,
    b64,
    checkpoint_message,
    entry_message,
    key_id,
    public_key,
    read_key_file,
    read_public_key,
    unb64,
    verify,
    write_key_file,
)

__all__ = [
    "ALGORITHM",
    "DEMO_CUSTODY",
    "KEY_FILE_HEADER",
    "PARTY_CUSTODY",
    "KeyPair",
    "b64",
    "checkpoint_message",
    "entry_message",
    "key_id",
    "public_key",
    "read_key_file",
    "read_public_key",
    "unb64",
    "verify",
    "write_key_file",
]
