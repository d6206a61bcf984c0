"""The operator's and the party's housekeeping: ``member`` (members and their bearer tokens, in the
database) and ``keys`` (a party's signing key made on its side, registered in a mechanism)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from deconflict.cli.common import DEFAULT_DB, DbFileOpt, MechanismIdOpt, open_service, user_errors

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
    """Revoke every token of a member: its requests get 401 from now on.

    Example: deconflict member revoke --db demo.db --mechanism tr-il-syria --member TR-2
    """

    service = open_service(db, migrate=True)
    n = service.revoke_tokens(mechanism_id=mechanism, member_id=member)
    typer.echo(f"{n} token(s) of {member} revoked")


@keys_app.command("generate")
@user_errors
def keys_generate(
    party: Annotated[str, typer.Option(help="The party code the key signs for, e.g. TR.")],
    out: Annotated[Path, typer.Option(help="The private key file to write (never overwritten; mode 0600).")],
) -> None:
    """Make an Ed25519 key pair on the party's side. The private key stays in OUT; give the printed public
    key to the operator, and read the fingerprint to the other members out of band.

    Example: deconflict keys generate --party TR --out tr.key
    """
    from deconflict.record import signing

    key = signing.KeyPair.generate()
    signing.write_key_file(out, key, party=party)
    typer.echo(f"private key written to {out} (keep it on your side)")
    typer.echo(f"public key:  {key.public_key}")
    typer.echo(f"fingerprint: {key.key_id}")


@keys_app.command("register")
@user_errors
def keys_register(
    party: Annotated[str, typer.Option(help="The party code, e.g. TR.")],
    public_key: Annotated[str, typer.Option(help="The public key (base64) or the party's key file.")],
    db: DbFileOpt = DEFAULT_DB,
    mechanism: MechanismIdOpt = "tr-il-syria",
) -> None:
    """Record a party's public key in the mechanism (the operator does this; it is a record entry).

    Example: deconflict keys register --db deconflict.db --party TR --public-key 9dJ3...=
    """
    from deconflict.record import signing

    service = open_service(db)
    key = service.register_key(mechanism_id=mechanism, party=party, public_key=signing.read_public_key(public_key))
    typer.echo(f"registered {key['key_id']} for {key['owner']} at entry {key['registered_seq']}")


@keys_app.command("list")
@user_errors
def keys_list(
    db: DbFileOpt = DEFAULT_DB,
    mechanism: MechanismIdOpt = "tr-il-syria",
) -> None:
    """The mechanism's keys, their fingerprints and who holds each private key.

    Example: deconflict keys list --db deconflict-demo.db
    """

    service = open_service(db)
    for k in service.keys(mechanism):
        revoked = f"  revoked at entry {k['revoked_seq']}" if k["revoked_seq"] else ""
        typer.echo(f"{k['key_id']}  {k['owner']:<8} held by {k['custody']}{revoked}")
