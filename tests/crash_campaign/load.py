"""A load client of the crash campaign (runs in its own process, forked by the
driver with a copy of the model). It acts on its family of branches one
request at a time and logs each request before sending it and each answer
after receiving it (one JSON line each, flushed at once), until the server
goes away (the kill) or its time is up.

Log lines:
  {"t":"intent","op":{...}}                      about to send
  {"t":"answer","id":...,"status":N,"body":...}  the server answered
  {"t":"lost","id":...,"error":"..."}            no answer: in flight at the kill
"""

from __future__ import annotations

import json
import random
import time
from typing import Any, Dict, Tuple

from api import PROJECT, Api, Lost, branch_path
from model import Model, script_sql


def perform(api: Api, it: Dict[str, Any]) -> Tuple[int, Any]:
    t, rid = it["type"], it["id"]
    if t == "sql":
        sql, params = script_sql(it)
        return api.call("POST", branch_path(it["branch"], "/sql"),
                        {"sql": sql, "params": params}, request_id=rid)
    if t == "create":
        body: Dict[str, Any] = {"name": it["branch"], "parent": it["parent"]}
        if it.get("at"):
            body["at"] = {"lsn": it["at"]}
        return api.call("POST", f"/v1/projects/{PROJECT}/branches", body, request_id=rid)
    if t == "rollback":
        return api.call("POST", branch_path(it["branch"], "/rollback"), {"to": it["to"]},
                        request_id=rid)
    if t == "label":
        return api.call("POST", branch_path(it["branch"], "/checkpoints"),
                        {"label": it["label"], "lsn": it["lsn"]}, request_id=rid)
    if t == "promote":
        return api.call("POST", branch_path(it["branch"], "/promote"), {"mode": "auto"},
                        request_id=rid)
    if t == "delete":
        return api.call("DELETE", branch_path(it["branch"]), request_id=rid)
    raise ValueError(f"unknown intent {t}")


def run(k: int, url: str, token: str, model: Model, seed: int, log_path: str,
        max_seconds: float) -> None:
    api = Api(url, token)
    rng = random.Random(seed)
    deadline = time.monotonic() + max_seconds
    with open(log_path, "a", encoding="utf-8") as log:
        def put(entry: Dict[str, Any]) -> None:
            log.write(json.dumps(entry, separators=(",", ":")) + "\n")
            log.flush()

        seq = 0
        while time.monotonic() < deadline:
            seq += 1
            intent = model.choose(k, rng, seq)
            put({"t": "intent", "op": intent})
            try:
                status, body = perform(api, intent)
            except Lost as e:
                put({"t": "lost", "id": intent["id"], "error": str(e)})
                return
            put({"t": "answer", "id": intent["id"], "status": status, "body": body})
            model.apply(intent, status, body)
