"""Reports (DESIGN §7): Parquet exports, compliance reports and self-verifying audit bundles."""

from reports._errors import ReportsError

__all__ = ["ReportsError"]
