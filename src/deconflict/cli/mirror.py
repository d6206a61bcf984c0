"""``deconflict mirror``: a party's own copy of the record, checked entry by entry as it arrives, its
checkpoints cosigned only when they extend what the party cosigned before.

Runs on the party's side with the party's own key. It follows the member's copy of the record over
the event stream (resuming after the last entry it holds), checks every entry with the pure verifier
(chain, signatures, authority rules, time), and keeps it in ``DIR/entries.jsonl``. At each checkpoint
note it checks that the signed Merkle root is the root of the entries it holds, that the service's
consistency proof shows the new tree extends the one it cosigned last (:class:`witness.Witness`), then
cosigns with the party's record key, keeps the note in ``DIR/cosigned/`` and posts the cosignature.

On a fork or any inconsistency it prints an ``ALARM`` line and the evidence, writes the evidence to
``DIR/fork-proof.txt`` and exits with status 1. When the evidence is two checkpoints the service
signed that cannot both be true, it is a fork proof (``witness.fork_proof_text``) anyone can check with
the service's note key alone (``witness.verify_fork_proof``).
"""

from __future__ import annotations

import json
import time
from array import array
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar

import typer

from deconflict.cli.common import user_errors
from deconflict.cli.remote import TokenOpt, UrlOpt
from deconflict.errors import DeconflictError, InvalidInput, LedgerBroken
from deconflict.record import merkle, note, signing, verify, witness
from deconflict.record.chain import GENESIS_HASH
from deconflict.record.merkle_cache import DEFAULT_LEVEL, SubtreeCache, TreeView
from deconflict.record.strict_json import load_json

if TYPE_CHECKING:
    from deconflict.client import Client

__all__ = ["ALARM_STATUS", "Alarm", "Mirror", "mirror"]

ALARM_STATUS = 1
"""Exit status when the mirror raises the alarm (0: caught up; 2: it could not run)."""
ENTRIES, COSIGNED, VKEY, KEPT, FORK_PROOF = (
    "entries.jsonl",
    "cosigned",
    "service.vkey",
    "checkpoints.jsonl",
    "fork-proof.txt",
)
SUBTREE_LEVEL = DEFAULT_LEVEL
"""``K``: the tree keeps the roots of subtrees of ``2^K`` entries and more; smaller ones are read back."""
_T = TypeVar("_T")


class Alarm(Exception):  # noqa: N818 - what the mirror exists to raise
    """The record does not hold: ``reason`` in words, ``evidence`` to keep, ``proven`` when it is a fork proof."""

    def __init__(self, reason: str, evidence: str, *, proven: bool = False) -> None:
        super().__init__(reason)
        self.reason, self.evidence, self.proven = reason, evidence, proven


class Held:
    """The entries the mirror holds: the streaming verifier's state, the file that keeps them, and the
    Merkle tree over their hashes in ``O(n / 2^K)`` memory.

    The tree is a :class:`~deconflict.record.merkle_cache.SubtreeCache`: the roots of its complete
    subtrees of ``2^K`` entries and more, and the hashes of the last, incomplete block. A root or a
    proof at any size reads at most two blocks of ``2^K`` entries back from ``DIR/entries.jsonl``, each
    with one seek (``starts`` keeps the byte offset of each block's first line), and the cache checks
    what it reads against the block's root, so an entry changed on disk under a running mirror is
    refused, not used. A mirror started on its folder rebuilds all this as it re-verifies the file.
    """

    def __init__(self, mechanism: str, path: Path, *, level: int = SUBTREE_LEVEL) -> None:
        self.mechanism, self.path = mechanism, path
        self.stream = verify.Stream(mechanism)
        """The record's verifier, fed each entry as it arrives."""
        self.tree = SubtreeCache(level)
        self.starts = array("q")
        """Byte offset in the file of the first line of each block of ``2^K`` entries."""
        self.end = 0
        """Bytes of whole lines in the file: where the next entry's line goes."""
        self.last: dict[str, Any] | None = None
        self.service_key: str | None = None

    @property
    def size(self) -> int:
        return self.tree.size

    @property
    def head_hash(self) -> str:
        return GENESIS_HASH if self.last is None else str(self.last["hash"])

    def load(self) -> None:
        """Read back, line by line, and check every entry the file holds; a last line cut short by a crash
        is cut off (it is fetched again). Raises :class:`DeconflictError` naming the first bad line."""
        if not self.path.exists():
            return
        with self.path.open("r+b") as f:
            for n, line in enumerate(f, 1):
                if not line.endswith(b"\n"):
                    f.truncate(self.end)
                    break
                try:
                    problem = self.check(load_json(line))
                except ValueError as e:
                    problem = f"not one JSON entry ({e})"
                if problem is not None:
                    raise DeconflictError(
                        f"{self.path}: line {n}: the copy this mirror holds does not verify: {problem}"
                    )
                self.end += len(line)

    def check(self, doc: dict[str, Any]) -> str | None:
        """The problem with the next entry (None: it verifies, and is now held; :meth:`save` writes it)."""
        problem = self.stream.feed(doc)
        if problem is not None:
            return problem
        if doc.get("seq") == 1:
            self.service_key = str(((doc.get("payload") or {}).get("service_key") or {}).get("public_key"))
        if self.tree.size % (1 << self.tree.level) == 0:
            self.starts.append(self.end)
        self.tree.append(merkle.entry_leaf(str(doc["hash"])))
        self.last = doc
        return None

    def save(self, doc: dict[str, Any]) -> None:
        """Append the entry just checked to the file (one line, at byte :attr:`end`)."""
        line = (json.dumps(doc, ensure_ascii=False, sort_keys=True) + "\n").encode("utf-8")
        with self.path.open("ab") as f:
            f.write(line)
        self.end += len(line)

    def _read(self, lo: int, hi: int) -> list[bytes]:
        """The hashes of entries ``lo + 1 .. hi`` (one block) read back from the file, from one seek."""
        try:
            with self.path.open("rb") as f:
                f.seek(self.starts[lo >> self.tree.level])
                return [merkle.entry_leaf(json.loads(f.readline())["hash"]) for _ in range(hi - lo)]
        except (OSError, ValueError, LookupError, TypeError, InvalidInput) as e:
            raise LedgerBroken(f"{self.path}: entries {lo + 1} to {hi} cannot be read back ({e})") from None

    def _named(self, work: Callable[[TreeView], _T]) -> _T:
        """``work`` over the tree as it is now; a block changed on disk is refused naming the file."""
        try:
            return work(self.tree.view(self._read))
        except LedgerBroken as e:
            raise LedgerBroken(e.message if str(self.path) in e.message else f"{self.path}: {e.message}") from None

    def leaf(self, index: int) -> bytes:
        """Leaf ``index``: entry ``index + 1``'s hash (raw)."""
        return self._named(lambda v: v.leaf(index))

    def root_at(self, size: int) -> bytes:
        """The Merkle root of the first ``size`` entries held."""
        return self._named(lambda v: v.root(size))

    def consistency_proof(self, m: int, n: int) -> list[bytes]:
        """The consistency proof from the first ``m`` entries held to the first ``n``."""
        return self._named(lambda v: v.consistency_proof(m, n))


def _b64s(items: list[str]) -> list[bytes]:
    return [signing.unb64(h, field="proof", size=merkle.HASH_SIZE) for h in items]


class Mirror:
    """A party's mirror over one folder: what it holds, the checkpoint it cosigned last, and the client."""

    def __init__(
        self,
        client: Client,
        key: signing.KeyPair,
        folder: Path,
        *,
        say: Callable[[str], None],
        level: int = SUBTREE_LEVEL,
    ) -> None:
        from deconflict.clock import system_clock

        self.client, self.folder, self.say, self.clock = client, folder, say, system_clock
        self.key = key
        self._said_custody = False
        (folder / COSIGNED).mkdir(parents=True, exist_ok=True)
        self.held = Held(client.mechanism, folder / ENTRIES, level=level)
        self.held.load()
        vkey = folder / VKEY
        self.service = note.parse_vkey(vkey.read_text() if vkey.exists() else client.note_keys()["service"])
        if self.held.size:
            self._check_service_key()
        cosigner = note.Cosigner(note.cosigner_name(client.mechanism, client.party), key)
        self.witness = witness.Witness(self.service, cosigner, last=self._last_note())
        self.pending: dict[int, dict[str, Any]] = {}
        self.diverged: str | None = None
        """Why the service's entries stopped following those held (the next checkpoint decides)."""
        self.diverged_evidence = ""

    # --- what the folder holds ---------------------------------------------------------------------

    def _last_note(self) -> note.Note | None:
        kept = sorted((self.folder / COSIGNED).glob("*.note"))
        if not kept:
            return None
        last = note.parse_note(kept[-1].read_text(encoding="utf-8"))
        cp, _ = note.open_checkpoint(last, self.service)
        if cp.size > self.held.size or cp.root != self.held.root_at(cp.size):
            raise DeconflictError(f"{kept[-1]}: the note cosigned last is not over the entries held in {ENTRIES}")
        return last

    def _check_service_key(self) -> None:
        """The service's note key must be the key the record's first entry declares (kept from then on)."""
        if self.held.service_key != signing.b64(self.service.public_key):
            raise Alarm(
                "the service's checkpoint-note key is not the service key the record's first entry declares",
                f"note key {self.service.vkey()}\nrecord's service key {self.held.service_key}\n",
            )
        path = self.folder / VKEY
        if not path.exists():
            path.write_text(self.service.vkey() + "\n", encoding="utf-8")

    # --- entries -----------------------------------------------------------------------------------

    def entry(self, doc: Any) -> None:
        """Take the next entry from the service: held once it verifies; anything else is the alarm."""
        if not isinstance(doc, dict):
            raise Alarm("the service sent something that is not an entry", json.dumps(doc) + "\n")
        seq, held = doc.get("seq"), self.held
        if type(seq) is int and 1 <= seq <= held.size and held.leaf(seq - 1).hex() == doc.get("hash"):
            return  # one already held, sent again
        if self.diverged is not None:
            return  # the next checkpoint decides
        if seq != held.size + 1 or doc.get("prev_hash") != held.head_hash:
            self._diverge(
                f"entry {seq} sent by the service does not follow entry {held.size} held "
                f"(its prev_hash {doc.get('prev_hash')}, held hash {held.head_hash})",
                doc,
            )
            return
        problem = held.check(doc)
        if problem is not None:
            raise Alarm(f"entry {seq} does not verify: {problem}", json.dumps(doc, sort_keys=True) + "\n")
        if seq == 1:
            self._check_service_key()
        held.save(doc)
        for size in sorted(s for s in self.pending if s <= held.size):
            self.checkpoint(self.pending.pop(size))

    def rewound(self, said: Any) -> None:
        """The service says its record ends before the entries held here (``event: rewound``: restored from a
        backup, rolled back, or failed over to a copy without them): entries it signed are no longer in it.
        As for an entry that does not follow, the next checkpoint decides."""
        if self.diverged is None:
            head = said.get("head") if isinstance(said, dict) else None
            self._diverge(
                f"the service's record now ends at entry {head}, before the {self.held.size} entries held here: "
                "entries it signed were taken out of it",
                said,
            )

    def _diverge(self, reason: str, sent: Any) -> None:
        """The service's record stopped following the entries held: say so, keep the evidence (the entry held
        last and what was sent), and let the checkpoints held back and the next one decide."""
        self.diverged = reason
        self.say(f"WARNING {reason}; waiting for the next checkpoint")
        held = (self.held.last, sent)
        self.diverged_evidence = "".join(json.dumps(d, sort_keys=True) + "\n" for d in held if d is not None)
        for pending in sorted(self.pending):
            self.checkpoint(self.pending.pop(pending))

    # --- checkpoints -------------------------------------------------------------------------------

    def checkpoint(self, doc: dict[str, Any]) -> None:
        """Check a checkpoint from the service; cosign it when it extends the last one cosigned."""
        text = doc.get("note")
        if not isinstance(text, str):
            return  # a checkpoint signed before notes existed
        try:
            cp, signed = note.open_checkpoint(text, self.service)
        except InvalidInput as e:
            raise Alarm(f"a checkpoint note that the service's key did not sign: {e}", text) from None
        if cp.origin != self.service.name:
            raise Alarm(f"a checkpoint of another log ({cp.origin})", text)
        last = self.witness.checkpoint
        if last is not None and (cp.size, cp.root) == (last.size, last.root):
            return  # the one cosigned last
        if cp.size > self.held.size and self.diverged is None:
            self.pending[cp.size] = doc  # its entries are on their way
            return
        if cp.size > self.held.size:
            self._against_last(cp, signed, self.diverged or "", self.diverged_evidence)
        mine = self.held.root_at(cp.size)
        if cp.root != mine:
            why = f"the root signed for size {cp.size} is not the root of the {cp.size} entries the service sent"
            if last is not None and self.witness.last is not None and last.size >= cp.size:
                proof = self.held.consistency_proof(cp.size, last.size)
                text = witness.fork_proof_text(signed, self.witness.last, prefix_root=mine, proof=proof)
                raise Alarm(f"FORK: {why}, and the tree cosigned at {last.size} begins with another", text, proven=True)
            self._against_last(cp, signed, why, signed.format())
        if last is not None and cp.size <= last.size:
            return  # an older checkpoint, consistent with what is held: nothing to cosign
        self._check_key()
        proof = _b64s(self.client.consistency(last.size, cp.size)["proof"]) if last is not None else []
        try:
            sig = self.witness.cosign(signed, proof, self.clock())
        except witness.Fork:  # both roots are those of the entries held: the service's proof is wrong, not the tree
            assert last is not None
            self.say(f"WARNING the service's consistency proof {last.size}→{cp.size} does not verify; using our own")
            sig = self.witness.cosign(signed, self.held.consistency_proof(last.size, cp.size), self.clock())
        self._keep(cp, doc, sig)

    def _check_key(self) -> None:
        """Before a cosignature: the key it is made with must be one the party registered in the entries held, and
        not revoked there. A cosignature by any other key is refused by the service and makes the mirror's own
        bundle fail ``ledger verify`` (it names the key as not the party's): nothing is cosigned with it."""
        party = self.client.party
        found = key_in_force(self.key, party, self.held.stream.ring.keys.values())
        if found["custody"] != signing.PARTY_CUSTODY and not self._said_custody:
            self._said_custody = True
            self.say(
                f"WARNING the key in --key ({self.key.key_id}) is one the service holds too ({found['custody']}): "
                f"cosignatures with it witness nothing against the service; {party} should register a key it "
                "alone holds (deconflict keys generate, then keys register)"
            )

    def _against_last(self, cp: note.Checkpoint, signed: note.Note, why: str, evidence: str) -> NoReturn:
        """Raise the alarm, with a fork proof when the tree signed at ``cp`` does not extend the last cosigned."""
        last, kept = self.witness.checkpoint, self.witness.last
        if last is None or kept is None or cp.size <= last.size:
            raise Alarm(f"{why}; no checkpoint cosigned before it, so no fork proof", evidence)
        try:
            got = self.client.consistency(last.size, cp.size)
            merkle.verify_consistency(last.size, cp.size, last.root, cp.root, _b64s(got["proof"]))
        except merkle.BadProof:
            for prefix, proof in self._evidence(got, last, cp):
                text = witness.fork_proof_text(kept, signed, prefix_root=prefix, proof=proof)
                try:
                    witness.verify_fork_proof(text, self.service)
                except InvalidInput:
                    continue
                raise Alarm(
                    f"FORK: {why}; the tree signed at {cp.size} does not extend the one cosigned at {last.size}",
                    text,
                    proven=True,
                ) from None
            raise Alarm(
                f"{why}; the service's tree at {cp.size} does not extend the one cosigned at {last.size}, "
                "and it gives no evidence that verifies",
                kept.format() + signed.format(),
            ) from None
        except DeconflictError as e:
            raise Alarm(f"{why}; and the service gives no consistency proof ({e})", evidence) from None
        raise Alarm(
            f"{why}, after the checkpoint cosigned at {last.size} (no second signed checkpoint to prove it: "
            "the signed entries are the evidence)",
            evidence + signed.format(),
        )

    def _evidence(
        self, got: dict[str, Any], last: note.Checkpoint, cp: note.Checkpoint
    ) -> list[tuple[bytes, list[bytes]]]:
        """Candidates for a fork proof's prefix: the service's own root and proof, then ones computed here
        from the hashes of the service's record (withheld entries included), kept as a tree of cached
        subtree roots whose blocks are asked of the service again (and checked) when a proof needs them."""
        out = [(signing.unb64(got["from_root"], field="from_root", size=32), _b64s(got["proof"]))]

        def hashes(after: int, limit: int) -> list[bytes]:
            return [merkle.entry_leaf(str(e["hash"])) for e in self.client.record_page(after, limit=limit)]

        theirs = SubtreeCache(self.held.tree.level)
        try:
            while theirs.size < cp.size and (page := hashes(theirs.size, 5000)):
                theirs.extend(page)
            view = theirs.view(lambda lo, hi: hashes(lo, hi - lo))
            if theirs.size >= cp.size and view.root(cp.size) == cp.root:
                out.append((view.root(last.size), view.consistency_proof(last.size, cp.size)))
        except (DeconflictError, ValueError, KeyError, TypeError):
            pass
        return out

    def _keep(self, cp: note.Checkpoint, doc: dict[str, Any], sig: note.Signature) -> None:
        assert self.witness.last is not None
        (self.folder / COSIGNED / f"{cp.size:012d}.note").write_text(self.witness.last.format(), encoding="utf-8")
        with (self.folder / KEPT).open("a", encoding="utf-8") as f:
            f.write(json.dumps({k: v for k, v in doc.items() if k != "note"}, sort_keys=True) + "\n")
        from deconflict.client import ClientError

        try:
            self.client.cosign(cp.size, sig.line())
            self.say(f"cosigned checkpoint {cp.size} (root {signing.b64(cp.root)})")
        except ClientError as e:
            self.say(f"WARNING cosigned checkpoint {cp.size} and kept it, but the service refused it: {e}")

    # --- running -----------------------------------------------------------------------------------

    def catch_up(self) -> None:
        """Read the member's copy page by page up to its end (or until it stops following what is held)."""
        while self.diverged is None and (page := self.client.record_page(self.held.size, limit=1000)):
            for doc in page:
                self.entry(doc)

    def once(self) -> None:
        """Catch up, then check (and cosign) every checkpoint signed since the last one cosigned."""
        self.catch_up()
        last = self.witness.checkpoint
        for doc in self.client.checkpoints(after=last.size if last is not None else 0):
            self.checkpoint(doc)
        if self.pending:  # signed while catching up: read the entries they cover
            self.catch_up()
        if self.diverged is not None:
            raise Alarm(f"{self.diverged}; no checkpoint newer than the last cosigned yet", self.diverged_evidence)

    def follow(self, retry_s: float) -> None:
        """Follow the event stream for ever, resuming after the last entry held when it drops."""
        import httpx

        from deconflict.client import ClientError

        lost = False
        while True:
            try:
                for event, data in self.client.events(self.held.size):
                    if lost:
                        self.say(f"stream back after entry {self.held.size}")
                        lost = False
                    if event == "checkpoint":
                        self.checkpoint(data)
                    elif event == "rewound":
                        self.rewound(data)
                    else:
                        self.entry(data)
                why = "it ended"
            except ValueError as e:  # strict JSON refused: a repeated key, NaN
                raise Alarm(f"the service sent an event that cannot be read one way only: {e}", "") from None
            except (httpx.TransportError, ClientError) as e:
                why = f"{type(e).__name__}: {e}"
            if not lost:
                self.say(f"stream lost ({why}); trying again every {retry_s:g} s")
                lost = True
            time.sleep(retry_s)


def key_in_force(key: signing.KeyPair, party: str, keys: Iterable[dict[str, Any]], *, said: str = "") -> dict[str, Any]:
    """``key`` as ``party`` registered it among ``keys`` (the service's list, or the ring of the entries held), in
    force: the one answer of the mirror's look before it fetches anything and of its look at each cosignature.

    Raises:
        DeconflictError: not one ``party`` registered, or revoked (``said`` goes first: the key file's name).
    """
    theirs = [k for k in keys if k.get("owner") == party]
    found = next((k for k in theirs if k.get("public_key") == key.public_key), None)
    if found is None:
        shown = ", ".join(
            f"{k['key_id']}{' (revoked)' if k.get('revoked_seq') is not None else ''}, held by {k.get('custody')}"
            for k in theirs
        )
        why = (
            f"the key in --key ({key.key_id}) is not a key {party} registered in the record ({party}'s keys: "
            f"{shown or 'none'}); nothing was cosigned with it. Give the file of {party}'s registered key, or "
            "register this one first (deconflict keys register)"
        )
    elif found.get("revoked_seq") is not None:
        why = (
            f"the key in --key ({key.key_id}) was revoked by entry {found['revoked_seq']} of the record: nothing "
            f"more is cosigned with it. Give the file of {party}'s key in force"
        )
    else:
        return found
    raise DeconflictError(f"{said}{why}", field="key")


@user_errors
def mirror(
    url: UrlOpt,
    token: TokenOpt,
    key: Annotated[Path, typer.Option(help="Your party's private key file (it signs the cosignatures).")],
    folder: Annotated[Path, typer.Option("--dir", help="Folder that keeps your copy and what you cosigned.")],
    once: Annotated[bool, typer.Option("--once", help="Catch up, cosign, and exit (for scripts).")] = False,
    retry_s: Annotated[float, typer.Option(min=0.05, help="Seconds between reconnections.")] = 2.0,
) -> None:
    """Keep your party's own checked copy of the record and cosign its checkpoints.

    Follows the record as the service shows it to you, checks every entry as it arrives, and cosigns
    each checkpoint that extends the last one you cosigned. On a fork or any inconsistency: an ALARM
    line, the evidence in DIR/fork-proof.txt, exit status 1 (2: the mirror could not run).

    Example: deconflict mirror --url http://127.0.0.1:8080 --token dcf_... --key tr.key --dir tr-mirror
    """
    from deconflict.cli.remote import client_for
    from deconflict.clock import iso, system_clock
    from deconflict.record.signing import read_key_file

    party, pair = read_key_file(key)
    client = client_for(url, token)
    if party != client.party:
        raise DeconflictError(f"{key} is {party}'s key; this token is {client.member}'s, of {client.party}")
    # said before anything is fetched or written (the entries held say it again, at each cosignature)
    key_in_force(pair, party, client.keys(), said=f"{key}: ")
    try:
        m = Mirror(client, pair, folder, say=typer.echo)
        typer.echo(f"mirror of {client.mechanism} for {client.party}: {m.held.size} entries held in {folder}")
        if once:
            m.once()
        else:
            m.follow(retry_s)
        last = m.witness.checkpoint
        typer.echo(f"caught up: {m.held.size} entries held; last cosigned {last.size if last else 'none'}")
    except Alarm as alarm:
        (folder / FORK_PROOF).write_text(alarm.evidence, encoding="utf-8")
        typer.echo(f"ALARM {iso(system_clock())} {client.mechanism}: {alarm.reason}")
        typer.echo(alarm.evidence, nl=False)
        typer.echo(f"evidence written to {folder / FORK_PROOF}" + (" (a fork proof)" if alarm.proven else ""))
        raise typer.Exit(ALARM_STATUS) from None
