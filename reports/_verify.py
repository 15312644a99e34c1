"""`verify_bundle`: check an audit bundle offline — no database, no network (docs/bundles.md).

Trust flows from the verifier key: the checkpoint must be signed by it, every bundled event must
hash to a leaf whose inclusion proof leads to the signed root, and everything else in the bundle
(the Parquet data, policies, catalogs, the report) must be exactly what those proven events say.
The manifest only catches accidents: it is not signed, so nothing is trusted because of it.

The checks, in the order they run, each in its module: the zip and its manifest
(`reports._verify_zip`), the checkpoint and the witnesses' cosignatures, the event lines a batch
at a time (`reports._verify_events`), the decisions they prove and what they refer to
(`reports._verify_data`), completeness (`reports._completeness`), then the data and the report
(`reports._verify_report`)."""

from __future__ import annotations

import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path

import pyarrow as pa

from ledger import CosignerVerifier, LedgerError, VerifierKey, parse_verifier_key
from reports._bundle import CHECKPOINT, EVENTS, MANIFEST, PUBLIC_KEY
from reports._errors import ReportsError
from reports._expect import ExpectedRows
from reports._verify_data import ExpectedData, referenced_files
from reports._verify_events import check_pool
from reports._verify_report import check_data, check_report
from reports._verify_result import BundleVerification, given_key
from reports._verify_zip import BundleZip
from reports._witnesses import check_witnesses, witness_quorum
from router.core import RouterError

__all__ = ["BundleVerification", "verify_bundle"]


def _verifier(bundle: BundleZip, key: str | None, result: BundleVerification) -> VerifierKey | None:
    """The key to check against: the given one (the bundled one must be it), or the bundle's
    own (None: missing or malformed, said why)."""
    bundled = bundle.read(PUBLIC_KEY)
    bundled_text = None if bundled is None else bundled.decode("utf-8", "replace").strip()
    if key is not None:
        verifier = given_key(key)
        result.key_source = "given"
        if bundled_text is not None and bundled_text != str(verifier):
            bundle.problem(f"{PUBLIC_KEY}: the bundled key is not the given key {verifier}")
        return verifier
    if bundled_text is None:
        bundle.problem(f"{PUBLIC_KEY}: missing (and no --key given)")
        return None
    try:
        return parse_verifier_key(bundled_text)
    except LedgerError as exc:
        bundle.problem(f"{PUBLIC_KEY}: {exc}")
        return None


def verify_bundle(
    path: Path | str,
    *,
    key: str | None = None,
    witness_keys: Sequence[str] = (),
    quorum: int | None = None,
    require_complete: bool = False,
    workers: int | None = None,
) -> BundleVerification:
    """Check an audit bundle (see the module docstring); `key` is the verifier key string or a
    file holding it (default: the bundle's own `public_key.txt`, which proves only that the
    bundle is self-consistent: pass the ledger operator's published key).

    `witness_keys` (vkeys or files holding one) and `quorum` (default: all of them): the
    checkpoint must carry valid cosignatures by at least `quorum` of those witnesses
    (docs/witness.md). `require_complete`: a bundle without a completeness proof is a problem,
    not a note (docs/bundles.md, "Completeness"). `workers`: processes that check the event lines
    beside this one's work on the decisions (None: one per CPU)."""
    if workers is not None and (type(workers) is not int or workers < 1):
        raise ReportsError(f"workers: expected a positive number of processes, got {workers!r}")
    source = Path(path)
    witnesses = witness_quorum(witness_keys, quorum)
    result = BundleVerification(str(source), quorum=len(witnesses) if quorum is None else quorum)
    try:
        archive = zipfile.ZipFile(source)
    except (OSError, zipfile.BadZipFile) as exc:
        raise ReportsError(f"{source}: not a readable zip file ({exc})") from None
    pool = check_pool(workers)
    try:
        with archive, tempfile.TemporaryDirectory(prefix="unhardcoded-verify-") as tmp:
            bundle = BundleZip(archive, result.problems.append, pool)
            _check(bundle, key, witnesses, require_complete, Path(tmp), result)
    finally:
        pool.shutdown(cancel_futures=True)
    return result


def _check(
    bundle: BundleZip,
    key: str | None,
    witnesses: Sequence[CosignerVerifier],
    require_complete: bool,
    work: Path,
    result: BundleVerification,
) -> None:
    """The checks of `verify_bundle`, in order, into `result`."""
    manifest = bundle.manifest()
    verifier = _verifier(bundle, key, result)
    if verifier is None:
        return
    result.key = str(verifier)
    opened = bundle.checkpoint(verifier)
    if opened is not None and witnesses:
        found, problems = check_witnesses(bundle.read(CHECKPOINT) or b"", witnesses, result.quorum)
        result.witnesses.extend(found)
        for text in problems:
            bundle.problem(text)
    if opened is not None:
        result.tree_size = opened.size
        if manifest is not None and manifest.get("tree_size") != opened.size:
            bundle.problem(
                f"{MANIFEST}/tree_size: {manifest.get('tree_size')} is not the "
                f"checkpoint's {opened.size}"
            )
        if manifest is not None and manifest.get("origin") != opened.origin:
            bundle.problem(
                f"{MANIFEST}/origin: {manifest.get('origin')!r} is not the "
                f"checkpoint's {opened.origin!r}"
            )
    if opened is None or manifest is None:
        result.events = sum(len(batch) for batch in bundle.events(opened))
        return
    expected = ExpectedRows(work / "expected")
    data = ExpectedData(bundle, manifest, expected, result)
    try:
        data.run(opened)
    except (RouterError, LedgerError, ReportsError, KeyError, TypeError) as exc:
        bundle.problem(f"{EVENTS}: the proven events do not make a decision record: {exc}")
        return
    finally:
        expected.close()
        bundle.events_read()
    result.completeness = data.sequence.finish(bundle.problem, result.notes.append)
    if require_complete and result.completeness is None and not result.problems:
        bundle.problem("completeness: not proven, and required (--require-complete)")
    referenced_files(bundle, data)
    data.release()
    pa.default_memory_pool().release_unused()
    made_by = check_data(bundle, expected, work / "data", result)
    if result.problems:
        return
    check_report(bundle, manifest, verifier, work / "data", made_by, result)
