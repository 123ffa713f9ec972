"""Old name of tower/cagg_refresh.py, kept only for importers this branch may not edit: ingest/sim/demo.py
(`tower demo`) uses `features.refresh`. Delete once they import tower.cagg_refresh."""

from __future__ import annotations

from tower.cagg_refresh import FEATURE_CAGGS, widen
from tower.cagg_refresh import refresh_feature_caggs as refresh

__all__ = ["FEATURE_CAGGS", "refresh", "widen"]
