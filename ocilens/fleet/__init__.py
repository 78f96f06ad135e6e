"""Fleet audit: many images at once, each distinct layer downloaded and scanned once.

>>> import ocilens
>>> fleet = ocilens.audit("registry.example.com:5000")          # every tag of every repository
>>> fleet = ocilens.audit(["host/app:1", "host/app:2"], executor="thread")
>>> fleet = ocilens.audit("host/app", executor=dask_client)       # every tag, on a Dask cluster
>>> fleet.images, fleet.layers, fleet.events, fleet.errors       # pandas DataFrames
>>> fleet.report().to_html("fleet.html")
"""

from __future__ import annotations

from .core import ERROR_COLUMNS, IMAGE_COLUMNS, LAYER_COLUMNS, RUN_COLUMNS, FleetAudit, audit
from .progress import FLEET_EVENTS
from .refs import Expanded, classify, expand
from .report import FleetPlots, FleetReport
from .worker import ScanResult, ScanTask, scan_task

__all__ = ["audit", "FleetAudit", "FleetReport", "FleetPlots", "expand", "classify", "Expanded", "ScanTask",
           "ScanResult", "scan_task", "IMAGE_COLUMNS", "LAYER_COLUMNS", "ERROR_COLUMNS", "RUN_COLUMNS",
           "FLEET_EVENTS"]
