"""The operator's and the party's housekeeping: ``mechanism declare`` (a new mechanism from its agreed
file), ``member`` (members and their bearer tokens, in the database) and ``keys`` (a party's signing key
made on its side, registered in a mechanism)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from deconflict.cli.common import (
    DEFAULT_DB,
    DbFileOpt,
    MechanismChoiceOpt,
    MechanismIdOpt,
    catch_up,
    chosen_mechanism,
    open_service,
    shown_db,
    user_errors,
)
from deconflict.cli.files import mechanism_app

__all__ = ["keys_app", "member_app"]

member_app = typer.Typer(help="Members of a mechanism and their bearer tokens.", no_args_is_help=True)
keys_app = typer.Typer(
    help="Signing keys: generate on the party's side, register in a mechanism.", no_args_is_help=True
)

MemberDbOpt = Annotated[str, typer.Option(help="Database URL or SQLite file.")]
MemberIdOpt = Annotated[str, typer.Option(help="Member id.")]


@member_app.command("add")
@user_errors
def member_add(
    mechanism: MechanismIdOpt,
    party: Annotated[
        str, typer.Option(help="Party the member acts for (for a facilitator or observer: its own code).")
    ],
    role: Annotated[str, typer.Option(help="party, facilitator or observer.")],
    name: Annotated[str, typer.Option(help="Who this is, e.g. 'Duty officer, Ankara'.")],
    db: MemberDbOpt = "deconflict.db",
    language: Annotated[str, typer.Option(help="en, tr, he, ar or ru.")] = "en",
    id: Annotated[str | None, typer.Option(help="Member id (default PARTY-N).")] = None,
) -> None:
    """Add a member and print its bearer token (shown once; only its hash is stored).

    Example: deconflict member add --db demo.db --mechanism tr-il-syria --party TR --role party --name "Duty officer"
    """

    service = open_service(db, migrate=True)
    member_id = id or service.next_member_id(mechanism, party)
    doc = {"id": member_id, "name": name, "role": role, "party": party, "language": language}
    service.check_member(mechanism_id=mechanism, member=doc)  # refused before anything is written
    catch_up(service)
    added = service.add_member(mechanism_id=mechanism, member=doc)
    token = service.issue_token(mechanism_id=mechanism, member_id=added.id, label=name)
    typer.echo(f"member {added.id} ({added.role.value} for {added.party}) added to {mechanism}", err=True)
    typer.echo(token)


@member_app.command("token")
@user_errors
def member_token(
    mechanism: MechanismIdOpt,
    member: MemberIdOpt,
    db: MemberDbOpt = "deconflict.db",
) -> None:
    """Print a new bearer token for an existing member.

    Example: deconflict member token --db demo.db --mechanism tr-il-syria --member TR
    """

    service = open_service(db, migrate=True)
    typer.echo(service.issue_token(mechanism_id=mechanism, member_id=member, label="cli"))


@member_app.command("revoke")
@user_errors
def member_revoke(
    mechanism: MechanismIdOpt,
    member: MemberIdOpt,
    db: MemberDbOpt = "deconflict.db",
) -> None:
    """Revoke every token of a member: its requests get 401 from now on, and its open event streams on a
    running service end within a second or two.

    Example: deconflict member revoke --db demo.db --mechanism tr-il-syria --member TR-2
    """

    service = open_service(db, migrate=True)
    n = service.revoke_tokens(mechanism_id=mechanism, member_id=member)
    typer.echo(f"{n} token(s) of {member} revoked")


@mechanism_app.command("declare")
@user_errors
def mechanism_declare(
    path: Annotated[Path, typer.Argument(help="The agreed mechanism file (TOML; deconflict mechanism check).")],
    db: Annotated[str, typer.Option(help="Database URL or SQLite file (a new file is made).")],
) -> None:
    """Declare a new mechanism from its agreed file: the record's first entries (the definition and the
    service's public key, then the zones the file lists). Nothing is written when the file is refused or
    the mechanism already exists. Then each party registers its own key (deconflict keys register) and
    each member gets a token (deconflict member token).

    Example: deconflict mechanism declare syria.toml --db 'postgresql://deconflict@/deconflict?host=/run/postgresql'
    """
    from deconflict.errors import DeconflictError
    from deconflict.mechanisms import load_mechanism
    from deconflict.service import Service

    m = load_mechanism(path)  # refused here, before the database is opened or made
    if "://" not in db and not Path(db).resolve().parent.is_dir():
        raise DeconflictError(f"db: {Path(db).parent} is not a folder; the database file goes in an existing one")
    service = Service.open(db, migrate=True)
    outcome = service.declare_mechanism(mechanism=m)  # a record of its own: nothing of another's fell due in it
    parties = sorted({x.party for x in m.members if x.role.value == "party"})
    typer.echo(
        f"mechanism {m.id} declared in {shown_db(db)}: {_count(len(m.members), 'member')}, "
        f"{_count(len(m.zones), 'zone')}, "
        f"record at entry {outcome.seq}"
    )
    typer.echo(
        f"next: each party makes its key and a registration request on its side (deconflict keys generate, then "
        f"deconflict keys request --mechanism {m.id}) and the operator registers it (deconflict keys register "
        f"--db ... --mechanism {m.id} --party {parties[0]} --request ...), then each member gets a token "
        f"(deconflict member token --db ... --mechanism {m.id} --member {m.members[0].id})"
    )


def _count(n: int, thing: str) -> str:
    return f"{n} {thing}" if n == 1 else f"{n} {thing}s"


@keys_app.command("generate")
@user_errors
def keys_generate(
    party: Annotated[str, typer.Option(help="The party code the key signs for, e.g. TR.")],
    out: Annotated[Path, typer.Option(help="The private key file to write (never overwritten; mode 0600).")],
) -> None:
    """Make an Ed25519 key pair on the party's side. The private key stays in OUT; the operator gets its
    registration request (deconflict keys request), and the other members its fingerprint, read out of band.

    Example: deconflict keys generate --party TR --out tr.key
    """
    from deconflict.record import signing

    key = signing.KeyPair.generate()
    signing.write_key_file(out, key, party=party)
    typer.echo(f"private key written to {out} (keep it on your side)")
    typer.echo(f"public key:  {key.public_key}")
    typer.echo(f"fingerprint: {key.key_id}")


@keys_app.command("request")
@user_errors
def keys_request(
    key: Annotated[Path, typer.Option(help="The party's new key file (deconflict keys generate), on its side.")],
    mechanism: Annotated[str, typer.Option(help="The mechanism the key is to sign in, e.g. tr-il-syria.")],
    out: Annotated[Path, typer.Option(help="The request file to write (no secret in it; never overwritten).")],
) -> None:
    """On the party's side: the request that the operator register the party's new key, with the key's proof
    of possession signed here. It holds no secret: give it to the operator, who registers it (deconflict keys
    register --request), and read its fingerprint to the operator and the other members out of band.

    Example: deconflict keys request --key tr.key --mechanism tr-il-syria --out tr.request
    """
    from deconflict.record import signing
    from deconflict.record.registration import Request, write_request

    party, pair = signing.read_key_file(key)
    request = Request.made(pair, mechanism=mechanism, party=party)
    write_request(out, request)
    typer.echo(f"registration request of {party}'s key {request.key_id} in {mechanism} written to {out}")
    typer.echo(
        f"give it to the operator (deconflict keys register --party {party} --request {out.name}); "
        "the private key stays in " + str(key)
    )


@keys_app.command("register")
@user_errors
def keys_register(
    party: Annotated[str, typer.Option(help="The party code, e.g. TR.")],
    request_file: Annotated[
        Path | None,
        typer.Option(
            "--request",
            help="The party's registration request (deconflict keys request, made on its side): its new public "
            "key and proof of possession, no secret.",
        ),
    ] = None,
    public_key: Annotated[
        Path | None,
        typer.Option(help="Or the new key's own file, on the party's side: it signs the proof of possession here."),
    ] = None,
    db: DbFileOpt = DEFAULT_DB,
    mechanism: MechanismChoiceOpt = None,
    with_key: Annotated[
        Path | None,
        typer.Option(
            help="The party's current key file: authorises the new key and signs the entry "
            "(needed while the party has a key in force that the service does not hold)."
        ),
    ] = None,
) -> None:
    """Record a party's new public key in the mechanism (a record entry) with its proof of possession.

    A party with no key in force (its first, or after a revocation) gets it from the operator,
    from the request the party made on its side (--request): the private key never leaves the
    party. While the party has a key in force, the party registers its next key itself, that key
    authorising it (--public-key with --with-key), unless the service holds it (demo only).

    Example: deconflict keys register --db deconflict.db --party TR --request tr.request
    """
    from datetime import datetime

    from deconflict.errors import InvalidInput
    from deconflict.record import signing
    from deconflict.record.registration import Request, read_request, registration_message
    from deconflict.service import Prepared, SignatureMode, Signed

    if (request_file is None) == (public_key is None):
        raise InvalidInput(
            "request: give the party's registration request (--request), or on the party's side its new key file "
            "(--public-key)",
            field="request",
        )
    if request_file is not None:
        if with_key is not None:
            raise InvalidInput(
                f"with_key: a request is registered by the operator, for a party with no key in force; while {party} "
                "has one, it registers its next key itself (--public-key with --with-key), or the operator revokes "
                "the old key first (deconflict keys revoke)",
                field="with_key",
            )
        new_request = read_request(request_file)
        if new_request.party != party:
            raise InvalidInput(
                f"request: {request_file} is a request of {new_request.party}, not of {party}", field="request"
            )
    else:
        assert public_key is not None
        owner, new = signing.read_key_file(public_key)
        if owner != party:
            raise InvalidInput(f"public_key: {public_key} is a key of {owner}, not of {party}", field="public_key")
    service = open_service(db)
    mechanism = chosen_mechanism(service, mechanism, db)
    if request_file is None:
        new_request = Request.made(new, mechanism=mechanism, party=party)
    elif new_request.mechanism != mechanism:
        raise InvalidInput(
            f"request: {request_file} asks for a key in mechanism {new_request.mechanism!r}, not {mechanism!r}",
            field="request",
        )
    message = registration_message(mechanism=mechanism, party=party, public_key=new_request.public_key)
    request: dict[str, Any] = {
        "mechanism_id": mechanism,
        "party": party,
        "public_key": new_request.public_key,
        "possession": new_request.possession,
    }
    if with_key is None:
        service.register_key(**request, check_only=True)  # every check first: a refusal writes nothing
        catch_up(service)
        key = service.register_key(**request)
    else:
        holder, current = signing.read_key_file(with_key)
        if holder != party:
            raise InvalidInput(f"with_key: {with_key} is a key of {holder}, not of {party}", field="with_key")
        request |= {"authorised_by": current.key_id, "authorisation": current.sign(message)}
        try:  # every check of the service first, nothing written (a key not in force is refused here)
            service.register_key(**request, mode=SignatureMode(prepare=True))
        except Prepared:
            pass
        catch_up(service)  # before the prepared entry that is signed takes its place in the chain
        try:
            key = service.register_key(**request, mode=SignatureMode(prepare=True))
        except Prepared as prepared:  # the party's own entry: sign it with the current key, then append it
            entry = prepared.entry
            signed = Signed(
                at=datetime.fromisoformat(entry["at"]),
                entry_hash=entry["hash"],
                key_id=current.key_id,
                signature=current.sign_entry(entry["hash"]),
            )
            key = service.register_key(**request, mode=SignatureMode(signed=signed))
    typer.echo(f"registered {key['key_id']} for {key['owner']} at entry {key['registered_seq']}")


@keys_app.command("revoke")
@user_errors
def keys_revoke(
    key_id: Annotated[str, typer.Option(help="The key's fingerprint, as deconflict keys list shows it.")],
    reason: Annotated[str, typer.Option(help="Why, for the record (at most 200 characters), e.g. 'laptop lost'.")],
    db: DbFileOpt = DEFAULT_DB,
    mechanism: MechanismChoiceOpt = None,
) -> None:
    """Revoke a party's key it reports lost or stolen: a record entry; what the key signs after it fails.

    The operator's command: from then on the key authorises nothing, and ledger verify refuses
    an entry signed with it after the revocation.

    A party left with no key in force gets its new one from the operator, from the request it
    makes on its side: deconflict keys request, then deconflict keys register --request.

    Example: deconflict keys revoke --db deconflict.db --key-id ed25519:3f2a... --reason "laptop lost"
    """
    from deconflict.errors import InvalidInput
    from deconflict.formats.docs import text
    from deconflict.service.keys import MAX_REASON

    if not reason.strip():
        raise InvalidInput("reason: say why the key is revoked (the record keeps it)", field="reason")
    reason = text(reason, "reason", max_len=MAX_REASON)  # as the record takes text: refused here, before anything
    service = open_service(db)
    mechanism = chosen_mechanism(service, mechanism, db)
    service.check_key_revocation(mechanism_id=mechanism, key_id=key_id)  # refused here, nothing written
    catch_up(service)
    key = service.revoke_key(mechanism_id=mechanism, key_id=key_id, reason=reason)
    owner = key["owner"]
    typer.echo(f"revoked {key['key_id']} of {owner} at entry {key['revoked_seq']}")
    typer.echo(
        f"if {owner}'s bearer tokens may be in the same hands (a lost laptop holds both), revoke them too: "
        f"deconflict member revoke --db ... --mechanism {mechanism} --member ..., then deconflict member token"
    )
    in_force = [k for k in service.keys(mechanism) if k["owner"] == owner and k["revoked_seq"] is None]
    if in_force:
        typer.echo(f"{owner} still has {', '.join(k['key_id'] for k in in_force)} in force")
    else:
        typer.echo(
            f"{owner} has no key in force now: the operator registers its new one from the request {owner} makes on "
            f"its side (deconflict keys request), once the fingerprint is confirmed out of band (deconflict keys "
            f"register --db ... --party {owner} --request ...)"
        )


@keys_app.command("list")
@user_errors
def keys_list(
    db: DbFileOpt = DEFAULT_DB,
    mechanism: MechanismChoiceOpt = None,
) -> None:
    """The mechanism's keys, their fingerprints and who holds each private key.

    Example: deconflict keys list --db deconflict-demo.db
    """

    service = open_service(db, read_only=True)
    mechanism = chosen_mechanism(service, mechanism, db)
    for k in service.keys(mechanism):
        revoked = f"  revoked at entry {k['revoked_seq']}" if k["revoked_seq"] else ""
        typer.echo(f"{k['key_id']}  {k['owner']:<8} held by {k['custody']}{revoked}")
