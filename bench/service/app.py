"""The feed service, one process (plus workers) per mode.

GET /feed?user=<user_id>&req=<i>
    0. waits for one of common.IN_FLIGHT slots (admission control),
    1. reads request i's user context and candidate list from Redis (one
       MGET), then the candidates' item records (one MGET of 3000 keys),
    2. ranks them with the mode (features + CatBoost),
    3. returns the top 100: {"req": i, "items": [item ids], "scores": [raw scores]}.
GET /health -> {"mode", "pid", "ready"}
GET /stats -> the mode's counters (pyfeat+cache: the item cache's)
GET /go-profile?seconds=S&path=P -> pyfeat modes: pyfeat.profile(P, S)

Listens on 127.0.0.1 only. Started by the harness as
``python bench/service/serve.py --mode MODE --port P --redis-port R``.
"""

from __future__ import annotations

import argparse
import asyncio
import os

import redis.asyncio as aioredis
from aiohttp import web

from . import common
from .modes import SERVED_MODE_CLASSES


async def feed(request: web.Request) -> web.Response:
    app = request.app
    try:
        rid = int(request.query["req"])
    except (KeyError, ValueError):
        raise web.HTTPBadRequest(text="req=<int> is required") from None
    r: aioredis.Redis = app["redis"]
    async with app["admission"]:  # see common.IN_FLIGHT
        user_blob, cand_blob = await r.mget(common.user_key(rid), common.cand_key(rid))
        if user_blob is None or cand_blob is None:
            raise web.HTTPNotFound(text=f"no request {rid} in the store")
        ids, candidates = common.unpack_candidates(cand_blob)
        mode = app["mode"]
        if hasattr(mode, "rank_ids"):  # the mode reads the records it needs itself
            order, scores = await mode.rank_ids(r, user_blob, ids, candidates, common.TOP_K)
        else:
            item_key = common.item_key
            item_blobs = await r.mget([item_key(i) for i in ids.tolist()])
            if any(b is None for b in item_blobs):
                raise web.HTTPInternalServerError(text="missing item records")
            order, scores = await mode.rank(user_blob, item_blobs, candidates, common.TOP_K)
            del item_blobs  # the records go now, not when the response is sent
    return web.json_response({"req": rid, "items": ids[order].tolist(), "scores": scores.tolist()})


async def health(request: web.Request) -> web.Response:
    return web.json_response({"mode": request.app["mode"].name, "pid": os.getpid(), "ready": True})


async def go_profile(request: web.Request) -> web.Response:
    """pyfeat modes: a Go CPU profile of this process for ?seconds=, written
    to ?path= (what bench/profile.py takes while py-spy records)."""
    import pyfeat

    seconds, path = float(request.query["seconds"]), request.query["path"]
    await asyncio.to_thread(pyfeat.profile, path, seconds)
    return web.json_response({"path": path})


async def stats(request: web.Request) -> web.Response:
    """The mode's own counters (pyfeat+cache: the item cache's)."""
    mode = request.app["mode"]
    return web.json_response(mode.stats() if hasattr(mode, "stats") else {})


def make_app(mode_name: str, redis_port: int, model_cbm: str, model_json: str) -> web.Application:
    app = web.Application()
    app.router.add_get("/feed", feed)
    app.router.add_get("/health", health)
    app.router.add_get("/stats", stats)
    if mode_name.startswith("pyfeat"):
        app.router.add_get("/go-profile", go_profile)

    async def on_startup(app):
        app["admission"] = asyncio.Semaphore(common.IN_FLIGHT)
        app["redis"] = aioredis.Redis(host="127.0.0.1", port=redis_port, max_connections=64)
        mode = SERVED_MODE_CLASSES[mode_name](model_cbm, model_json)
        await mode.start()
        app["mode"] = mode

    async def on_cleanup(app):
        app["mode"].close()
        await app["redis"].aclose()

    app.on_startup.append(on_startup)
    app.on_cleanup.append(on_cleanup)
    return app


def main(argv=None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mode", required=True, choices=sorted(SERVED_MODE_CLASSES))
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--redis-port", type=int, required=True)
    cbm, js = common.model_paths()
    ap.add_argument("--model-cbm", default=str(cbm))
    ap.add_argument("--model-json", default=str(js))
    a = ap.parse_args(argv)
    app = make_app(a.mode, a.redis_port, a.model_cbm, a.model_json)
    # run_app turns SIGINT and SIGTERM into a clean shutdown (on_cleanup joins the workers).
    web.run_app(app, host="127.0.0.1", port=a.port, access_log=None, print=None, handle_signals=True)
