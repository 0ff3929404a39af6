"""The seeds' in-app instrumentation, written their way (../shared/seeds/), for the
seed-query test: the same traffic reaches this app through Envoy + routemeter, and the
seeds' dashboard and alert expressions must give the same results on both.

One seed per process: `inapp.py SEED PORT METRICS_PORT` (SEED `instrumentator`:
prometheus-fastapi-instrumentator's defaults; `opentelemetry`: OpenTelemetry's FastAPI
instrumentation; for the profiles of those names). Metrics are served on their own
port (prometheus_client's server), so scraping them is not traffic the middleware counts.
Every handler sleeps `sleep_ms` and answers `status` (or raises, for seed 000's `fail`),
so the test decides durations and outcomes.
"""

import asyncio
import sys
import time
from enum import Enum
from functools import wraps

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

SEED, PORT, METRICS_PORT = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
registry = CollectorRegistry()
app = FastAPI()


async def behave(request: Request, default_status: int = 200):
    await asyncio.sleep(int(request.query_params.get("sleep_ms", "0")) / 1000)
    return JSONResponse({"ok": True}, status_code=int(request.query_params.get("status", default_status)))


def library_routes():
    """The app of the library profiles (instrumentator, opentelemetry)."""

    @app.get("/items/{item_id}")
    async def item(item_id: str, request: Request):
        return await behave(request)

    @app.post("/upload")
    async def upload_file(request: Request):
        await request.body()
        return await behave(request, 201)


if SEED == "000":
    # 000: a decorator on the conversion endpoint; format and compression are its query
    # parameters; durations of successful conversions only.
    class OutputFormat(str, Enum):
        CSV = "csv"
        JSON = "json"

    class CompressionType(str, Enum):
        NONE = "none"
        GZIP = "gzip"

    excel_conversions_total = Counter(
        "excel_conversions_total", "Total number of Excel conversions processed",
        ["status", "format", "compression"], registry=registry)
    excel_conversion_duration = Histogram(
        "excel_conversion_duration_seconds", "Time spent converting Excel files", ["format", "compression"],
        buckets=[0.1, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0], registry=registry)

    def track_conversion_metrics(func):
        @wraps(func)
        async def wrapper(*args, **kwargs):
            start_time = time.time()
            format_type = kwargs.get("output_format").value
            compression = kwargs.get("compression").value
            try:
                result = await func(*args, **kwargs)
                duration = time.time() - start_time
                excel_conversions_total.labels(status="success", format=format_type, compression=compression).inc()
                excel_conversion_duration.labels(format=format_type, compression=compression).observe(duration)
                return result
            except Exception:
                excel_conversions_total.labels(status="error", format=format_type, compression=compression).inc()
                raise
        return wrapper

    @app.post("/convert")
    @track_conversion_metrics
    async def convert(request: Request, output_format: OutputFormat = OutputFormat.CSV,
                      compression: CompressionType = CompressionType.NONE, sleep_ms: int = 0, fail: int = 0):
        await request.body()
        await asyncio.sleep(sleep_ms / 1000)
        if fail:
            raise RuntimeError("conversion failed")
        return {"converted": True}

elif SEED in ("001", "004"):
    # 001: a middleware labelling by route template, its own buckets; uploads by outcome.
    # 004: the same middleware with the `api_` names, the raw path as endpoint, an
    # in-progress gauge and its own buckets.
    prefix = "api_" if SEED == "004" else "http_"
    buckets = [0.01, 0.05, 0.1, 0.5, 1.0, 2.0, 5.0, 10.0] if SEED == "004" else [0.01, 0.05, 0.1, 0.5, 1.0, 2.5, 5.0, 10.0]
    requests_total = Counter(prefix + "requests_total", "Total requests", ["method", "endpoint", "status"],
                             registry=registry)
    duration = Histogram(prefix + "request_duration_seconds", "Request duration", ["method", "endpoint"],
                         buckets=buckets, registry=registry)
    in_progress = Gauge(prefix + "requests_in_progress", "In progress", ["method", "endpoint"], registry=registry)
    uploads_total = Counter("uploads_total", "Uploads by outcome", ["status"], registry=registry)

    @app.middleware("http")
    async def metrics(request: Request, call_next):
        method = request.method
        raw = request.url.path
        if SEED == "004":
            in_progress.labels(method=method, endpoint=raw).inc()
        start_time = time.time()
        try:
            response = await call_next(request)
            route = request.scope.get("route")
            endpoint = raw if SEED == "004" else (route.path if route else raw)
            requests_total.labels(method=method, endpoint=endpoint, status=response.status_code).inc()
            duration.labels(method=method, endpoint=endpoint).observe(time.time() - start_time)
            return response
        finally:
            if SEED == "004":
                in_progress.labels(method=method, endpoint=raw).dec()

    @app.post("/api/v1/upload")
    async def upload(request: Request, filename: str = "a.xlsx", sleep_ms: int = 0):
        body = await request.body()
        await asyncio.sleep(sleep_ms / 1000)
        if len(body) > 50_000:
            uploads_total.labels(status="failed_size").inc()
            return JSONResponse({"error": "too large"}, status_code=413)
        if not filename.endswith(".xlsx"):
            uploads_total.labels(status="failed_validation").inc()
            return JSONResponse({"error": "not a spreadsheet"}, status_code=400)
        uploads_total.labels(status="success").inc()
        return JSONResponse({"job_id": "j1"}, status_code=201)

    @app.get("/api/v1/status/{job_id}")
    async def status(job_id: str, request: Request):
        return await behave(request)

    @app.get("/api/v1/videos")
    async def videos(request: Request):
        return await behave(request)

    @app.post("/api/v1/jobs")
    async def jobs(request: Request):
        return await behave(request, 202)

elif SEED == "003":
    # 003: a decorator labelling by the handler function's name, default buckets.
    http_requests_total = Counter("http_requests_total", "Total HTTP requests", ["method", "endpoint", "status"],
                                  registry=registry)
    http_request_duration = Histogram("http_request_duration_seconds", "HTTP request duration",
                                      ["method", "endpoint"], registry=registry)

    def track_request_metrics(func):
        @wraps(func)
        async def wrapper(*args, **kwargs):
            start_time = time.time()
            status = 500
            try:
                response = await func(*args, **kwargs)
                status = response.status_code
            finally:
                duration = time.time() - start_time
                http_requests_total.labels(method="GET", endpoint=func.__name__, status=status).inc()
                http_request_duration.labels(method="GET", endpoint=func.__name__).observe(duration)
            return response
        return wrapper

    @app.get("/api/trades")
    @track_request_metrics
    async def get_trades(request: Request):
        return await behave(request)

    @app.get("/api/positions")
    @track_request_metrics
    async def get_positions(request: Request):
        return await behave(request)

elif SEED == "instrumentator":
    # Not a seed: prometheus-fastapi-instrumentator with its defaults, for the profile of
    # that name.
    from prometheus_fastapi_instrumentator import Instrumentator

    library_routes()
    Instrumentator(registry=registry).instrument(app)

elif SEED == "opentelemetry":
    # Not a seed: OpenTelemetry's FastAPI instrumentation with the stable HTTP conventions,
    # exported by its Prometheus reader, for the profile of that name.
    import os

    os.environ["OTEL_SEMCONV_STABILITY_OPT_IN"] = "http"
    from opentelemetry import metrics as otel_metrics
    from opentelemetry.exporter.prometheus import PrometheusMetricReader
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
    from opentelemetry.sdk.metrics import MeterProvider
    from prometheus_client import REGISTRY

    registry = REGISTRY
    otel_metrics.set_meter_provider(MeterProvider(metric_readers=[PrometheusMetricReader()]))

    library_routes()
    FastAPIInstrumentor.instrument_app(app)

else:
    sys.exit(f"unknown seed {SEED}")


@app.get("/ready")
async def ready():
    return {"ready": True}


if __name__ == "__main__":
    start_http_server(METRICS_PORT, addr="127.0.0.1", registry=registry)
    # uvicorn closes a keep-alive connection idle for 5 s; Envoy keeps its upstream
    # connections for an hour. A request Envoy sends on one the app is closing gets a 503
    # from Envoy that the app never counts (seed 004 waits 4 s between phases, close enough
    # on a loaded machine). Keep-alive outlives the test, as it would behind a proxy.
    uvicorn.run(app, host="127.0.0.1", port=PORT, log_level="warning", timeout_keep_alive=600)
