"""The record: each mechanism's signed, hash-chained log of entries, and how anyone checks it offline.

Pure (no database, web or CLI framework), so a party's client and ``deconflict ledger verify``
load only this:

- :mod:`~deconflict.record.chain`: canonical JSON, entry hashes, the chain's head, drafting the
  next entry, checkpoints;
- :mod:`~deconflict.record.verify`: the key ring the record declares and the verifier that
  recomputes a chain, checks every signature and names the first bad entry;
- :mod:`~deconflict.record.signing`: Ed25519 keys, what they sign, key files;
- :mod:`~deconflict.record.bundle`: a mechanism's record written to one file and checked from it.

Appending to and reading from the database is :mod:`deconflict.store.ledger`.
"""

__all__ = ["bundle", "chain", "signing", "verify"]
