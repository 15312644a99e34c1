"""`unhardcoded policy validate|fingerprint`: check a sigma-pol/v1 policy, print its fingerprint."""

from __future__ import annotations

import json

import click

from unhardcoded.cli._common import reports_errors
from unhardcoded.cli._options import catalog_option, open_catalog


@click.group("policy")
def policy_group() -> None:
    """Validate sigma-pol/v1 policies and compute their fingerprints.

    \b
    Example:
        unhardcoded policy validate router/data/policies/enterprise-eu.json
    """


@policy_group.command("validate")
@click.argument("file", metavar="FILE")
@catalog_option
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@reports_errors
def validate(file: str, catalog_file: str | None, as_json: bool) -> None:
    """Validate the policy in FILE ('-' for stdin) against the catalog's attribute schema.

    Every problem is reported with the JSON pointer of the offending node; an invalid policy
    exits with code 2. A valid one prints its fingerprint and rule ids (--json: also the
    normalized policy).

    \b
    Example:
        unhardcoded policy validate router/data/policies/regulated.json
    """
    from router.services.catalogs import load_policy

    catalog = open_catalog(catalog_file, file)
    policy = load_policy(file, catalog)
    if as_json:
        document = {
            "valid": True,
            "fingerprint": policy.fingerprint,
            "digest": policy.digest,
            "catalog_version": catalog.version,
            "normalized": policy.to_json(),
        }
        click.echo(json.dumps(document, indent=2, ensure_ascii=False))
        return
    click.echo(f"valid: {policy.fingerprint}")
    for rule in policy.rules:
        click.echo(f"  {rule.id}: {rule.describe()}")


@policy_group.command("fingerprint")
@click.argument("file", metavar="FILE")
@catalog_option
@click.option("--json", "as_json", is_flag=True, help="Print the display form and the digest.")
@reports_errors
def fingerprint(file: str, catalog_file: str | None, as_json: bool) -> None:
    """Print the fingerprint of the policy in FILE ('-' for stdin).

    The fingerprint is SHA-256 over the RFC 8785 bytes of the normalized policy, shown as its
    first 8 bytes read as two big-endian unsigned 32-bit integers. --json adds the full digest.

    \b
    Example:
        unhardcoded policy fingerprint router/data/policies/free-tier.json
    """
    from router.services.catalogs import load_policy

    policy = load_policy(file, open_catalog(catalog_file, file))
    if as_json:
        click.echo(json.dumps({"fingerprint": policy.fingerprint, "digest": policy.digest}))
    else:
        click.echo(policy.fingerprint)
