"""The gateway's Prometheus metrics (docs/gateway.md, Metrics): what was granted, what was refused, and why.

Request latency and counts by route come from :class:`~..httpmetrics.HttpMetrics`;
the counters here say what the status codes cannot: which kind of grant left
the gateway, and which check refused a request (a 401 is a bad signature or a
replay, a 403 an unregistered hotkey or a missing permission).
"""

from __future__ import annotations

from ..httpmetrics import HttpMetrics

#: Grant kinds: the ``kind`` label, one per endpoint (``/get-miner-list`` is ``miner_listing`` too).
MINER_FOLDER = "miner_folder"
FILE_UPLOAD = "file_upload"
VALIDATOR_LISTING = "validator_listing"
MINER_LISTING = "miner_listing"
FILE_URLS = "file_urls"


class GatewayMetrics(HttpMetrics):
    """``sn46_gateway_*``: the request metrics, plus grants, repeated answers and refusals."""

    def __init__(self) -> None:
        super().__init__("sn46_gateway")
        self.grants = self.counter(
            "grants", "Requests admitted and charged: grants issued, by kind.", ("kind",)
        )
        self.repeats = self.counter(
            "repeated_answers",
            "Exact retries answered with their first grant, uncharged, by kind.",
            ("kind",),
        )
        self.refusals = self.counter(
            "refusals", "Requests refused, by the check that refused them.", ("reason",)
        )
