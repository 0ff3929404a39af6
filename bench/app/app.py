"""The in-app instrumentation routemeter replaces, for `make bench`'s side-by-side part.

A FastAPI service with the demo's job-status route, run by uvicorn. With ROUTEMETER_BENCH_INSTRUMENT=1
it is instrumented the way such services usually are: prometheus-fastapi-instrumentator's defaults
and a /metrics endpoint. The bench measures the app's CPU per request with
and without it, and Envoy's CPU per request with and without routemeter in front of the plain app.
"""

import os

from fastapi import FastAPI

app = FastAPI()


@app.get("/api/v1/status/{job_id}")
async def status(job_id: str):
    return {"job_id": job_id, "status": "completed"}


if os.environ.get("ROUTEMETER_BENCH_INSTRUMENT") == "1":
    from prometheus_fastapi_instrumentator import Instrumentator

    # Its default metrics (counter, latency histograms, request and response size summaries by
    # handler) plus the in-progress gauge routemeter also keeps.
    Instrumentator(should_instrument_requests_inprogress=True, inprogress_labels=True).instrument(app).expose(app)
