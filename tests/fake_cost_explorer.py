"""A fake AWS Cost Explorer (anomaly calls only) on 127.0.0.1, speaking the JSON 1.1 protocol.

It answers ``AWSInsightsIndexService.GetAnomalies`` with the documented response shape, paged
by ``NextPageToken`` (`page_size` anomalies a page, ``MaxResults`` when smaller), keeping the
anomalies whose ``AnomalyEndDate`` falls in the requested ``DateInterval``; and
``ProvideAnomalyFeedback``, storing the feedback on the anomaly. Every request is recorded.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

TARGET_PREFIX = "AWSInsightsIndexService."


def anomaly(
    anomaly_id: str,
    start: str,
    end: str,
    impact: float,
    actual: float,
    causes: list[dict[str, str]],
    dimension: str = "AWS services",
) -> dict[str, Any]:
    """One anomaly as GetAnomalies documents it."""
    expected = actual - impact
    return {
        "AnomalyId": anomaly_id,
        "AnomalyStartDate": start,
        "AnomalyEndDate": end,
        "DimensionValue": dimension,
        "RootCauses": causes,
        "AnomalyScore": {"MaxScore": 0.92, "CurrentScore": 0.9},
        "Impact": {
            "MaxImpact": impact / 4,
            "TotalImpact": impact,
            "TotalActualSpend": actual,
            "TotalExpectedSpend": expected,
            "TotalImpactPercentage": round(impact / expected * 100, 2),
        },
        "MonitorArn": "arn:aws:ce::314159265358:anomalymonitor/services",
    }


class FakeCostExplorer:
    """Serves `anomalies`; records ``(operation, body)`` of each request in `calls`."""

    def __init__(self, anomalies: list[dict[str, Any]], page_size: int = 1) -> None:
        self.anomalies = [dict(item) for item in anomalies]
        self.page_size = page_size
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self._server: ThreadingHTTPServer | None = None

    def of(self, operation: str) -> list[dict[str, Any]]:
        """Bodies of the requests for `operation`, in order."""
        return [body for name, body in self.calls if name == operation]

    def answer(self, operation: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """The status and JSON answer to one request."""
        if operation == "GetAnomalies":
            interval = body["DateInterval"]
            found = [
                item
                for item in self.anomalies
                if interval["StartDate"] <= item["AnomalyEndDate"]
                and (not interval.get("EndDate") or item["AnomalyEndDate"] <= interval["EndDate"])
            ]
            start = int(body.get("NextPageToken") or 0)
            size = min(self.page_size, body.get("MaxResults") or self.page_size)
            page: dict[str, Any] = {"Anomalies": found[start : start + size]}
            if start + size < len(found):
                page["NextPageToken"] = str(start + size)
            return 200, page
        if operation == "ProvideAnomalyFeedback":
            for item in self.anomalies:
                if item["AnomalyId"] == body["AnomalyId"]:
                    item["Feedback"] = body["Feedback"]
                    return 200, {"AnomalyId": item["AnomalyId"]}
            return 400, {"__type": "UnknownMonitorException", "message": "no such anomaly"}
        return 400, {"__type": "UnknownOperationException", "message": operation}

    def __enter__(self) -> FakeCostExplorer:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                target = self.headers.get("X-Amz-Target", "")
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])) or b"{}")
                operation = target.removeprefix(TARGET_PREFIX)
                fake.calls.append((operation, body))
                status, answer = fake.answer(operation, body)
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/x-amz-json-1.1")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    @property
    def url(self) -> str:
        """The endpoint URL boto3 is pointed at."""
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __exit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()
