"""The gateway's own HTTP metrics (the services' gRPC metrics live in quakestack/metrics.py).

`route` is the path template (or a fixed name such as `unmatched`), never the raw path, so the
label set stays bounded whatever clients send.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

REQUESTS = Counter("quakestack_gateway_requests_total", "HTTP requests answered by the gateway.",
                   ["route", "method", "status"])
LATENCY = Histogram("quakestack_gateway_request_duration_seconds",
                    "Time from request to the end of the response (whole stream for streams).",
                    ["route", "method"],
                    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60))
IN_FLIGHT = Gauge("quakestack_gateway_requests_in_flight", "HTTP requests being answered now.")
