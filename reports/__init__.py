"""Reports (floor 4 of docs/architecture.md): Parquet exports, compliance reports and
self-verifying audit bundles.

::

    async with open_ledger(url) as ledger:
        summary = await export_parquet(ledger, "out/", tenant="acme", since=..., until=...)
        bundle = await create_bundle(ledger, "acme.zip", tenant="acme", since=..., until=...)
    report = build_report("out/", tenant="acme", since=..., until=...)
    render_html(report), report.to_json()
    verify_bundle("acme.zip", key="unhardcoded/…+…+…")   # offline: no database, no network
    verify_export("out/", key="unhardcoded/…+…+…")       # a tenant's export folder is complete

docs/reports.md describes the datasets and the report, docs/bundles.md the bundle format.
"""

from reports._bundle import BUNDLE_FORMAT, BundleSummary, create_bundle, event_line
from reports._errors import ReportsError
from reports._export import ExportSummary, Progress, export_parquet
from reports._folderverify import ExportVerification, verify_export
from reports._html import render_html
from reports._pageverify import PageVerification, verify_page
from reports._report import REPORT_SCHEMA, ComplianceReport, build_report, ledger_context
from reports._schema import DATASETS, PARTITIONS, SCHEMAS
from reports._verify import BundleVerification, verify_bundle
from reports._writer import read_dataset

__all__ = [
    "BUNDLE_FORMAT",
    "DATASETS",
    "PARTITIONS",
    "REPORT_SCHEMA",
    "SCHEMAS",
    "BundleSummary",
    "BundleVerification",
    "ComplianceReport",
    "ExportSummary",
    "ExportVerification",
    "PageVerification",
    "Progress",
    "ReportsError",
    "build_report",
    "create_bundle",
    "event_line",
    "export_parquet",
    "ledger_context",
    "read_dataset",
    "render_html",
    "verify_bundle",
    "verify_export",
    "verify_page",
]
