"""`pricing refresh` over HTTP against a real server on 127.0.0.1 (stdlib http.server).

The server serves SkyPilot-layout catalog files with an ETag and Last-Modified, answers a
matching conditional GET with 304, fails with 503 a set number of times, stalls past the
client's timeout, and 404s a cloud it does not have.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

import pricing

LAMBDA_VMS = (
    "InstanceType,AcceleratorName,AcceleratorCount,vCPUs,MemoryGiB,Price,SpotPrice,Region\n"
    "gpu_1x_h100_sxm5,H100,1.0,26.0,225.0,2.49,,us-east-1\n"
    "gpu_8x_h100_sxm5,H100,8.0,208.0,1800.0,23.92,,us-east-1\n"
)
RUNPOD_VMS = (
    "InstanceType,AcceleratorName,AcceleratorCount,vCPUs,MemoryGiB,Price,SpotPrice,Region\n"
    "1x_L4_SECURE,L4,1.0,8.0,32.0,0.43,0.22,CA\n"
)
ETAG = '"lambda-v1"'
LAST_MODIFIED = "Sat, 05 Dec 2026 10:00:00 GMT"


class _Catalog(BaseHTTPRequestHandler):
    seen: ClassVar[list[tuple[str, str | None]]] = []
    fail_left: ClassVar[dict[str, int]] = {}

    def do_GET(self) -> None:
        cloud = self.path.strip("/").split("/")[2]  # /catalogs/v8/<cloud>/vms.csv
        type(self).seen.append((cloud, self.headers.get("If-None-Match")))
        if cloud == "slow":
            time.sleep(1.5)
            return self._send(200, LAMBDA_VMS)
        if self.fail_left.get(cloud, 0) > 0:
            self.fail_left[cloud] -= 1
            return self._send(503, "busy")
        if cloud == "lambda":
            if self.headers.get("If-None-Match") == ETAG:
                return self._send(304, "")
            return self._send(200, LAMBDA_VMS, etag=True)
        if cloud == "runpod":
            return self._send(200, RUNPOD_VMS)
        return self._send(404, "no such catalog")

    def _send(self, code: int, body: str, *, etag: bool = False) -> None:
        data = body.encode()
        self.send_response(code)
        if etag:
            self.send_header("ETag", ETAG)
            self.send_header("Last-Modified", LAST_MODIFIED)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if code != 304:
            self.wfile.write(data)

    def log_message(self, *args: object) -> None:  # keep the test output quiet
        pass


@pytest.fixture
def catalog_url(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    _Catalog.seen = []
    _Catalog.fail_left = {}
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Catalog)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}/catalogs"
    monkeypatch.setenv("SKYBATCH_CATALOG_URL", url)
    try:
        yield url
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_fetch_retries_5xx_times_out_and_reports_each_cloud(catalog_url: str) -> None:
    _Catalog.fail_left = {"runpod": 2, "azure": 99}
    fetched, errors = pricing.fetch_catalogs(
        ["lambda", "runpod", "azure", "slow", "nope"],
        timeout_s=0.5,
        retries=2,
        backoff_s=0.01,
        progress=True,  # on stderr; stdout stays clean
    )
    by_cloud = {f.cloud: f for f in fetched}
    assert by_cloud["lambda"].status == "downloaded"
    assert by_cloud["runpod"].status == "downloaded"  # after two 503s
    assert by_cloud["lambda"].path.read_text() == LAMBDA_VMS
    assert errors["azure"].startswith("HTTP 503") and "(3 tries)" in errors["azure"]
    assert errors["slow"].startswith("timed out after 0.5 s")
    assert errors["nope"].startswith("HTTP 404")
    assert sum(1 for c, _ in _Catalog.seen if c == "runpod") == 3


def test_a_second_fetch_is_conditional_and_keeps_the_file_on_304(catalog_url: str) -> None:
    pricing.fetch_catalogs(["lambda"], progress=False)
    (again,), errors = pricing.fetch_catalogs(["lambda"], progress=False)
    assert errors == {} and again.status == "not modified"
    assert _Catalog.seen[-1] == ("lambda", ETAG)
    assert again.path.read_text() == LAMBDA_VMS
    offers = pricing.from_fetched([(again.cloud, again.path)])
    assert {o.instance_type for o in offers} == {"gpu_1x_h100_sxm5", "gpu_8x_h100_sxm5"}
    assert all("over HTTP" in o.source for o in offers)


def test_refresh_json_prints_only_the_object_on_stdout(catalog_url: str, tmp_path: Path) -> None:
    import os

    _Catalog.fail_left = {"runpod": 1}
    run = subprocess.run(
        [sys.executable, "-m", "scheduler.cli", "pricing", "refresh", "--cloud", "lambda",
         "--cloud", "runpod", "--cloud", "nope", "--json"],
        capture_output=True, text=True, timeout=120, env={**os.environ},
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)  # the whole of stdout is one JSON object
    assert out["clouds"] == ["lambda", "runpod"]
    assert set(out["errors"]) == {"nope"}
    assert out["imported"] == 3
    lam = pricing.list_offerings(clouds=["lambda"])
    assert {o.instance_type for o in lam} == {"gpu_1x_h100_sxm5", "gpu_8x_h100_sxm5"}
