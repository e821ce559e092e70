"""A push's answer, written by orjson where it writes the bytes ``JSONResponse`` writes.

Why: a push of 1,000 ops is answered with ~120 KB of JSON; ``JSONResponse`` (the standard
``json`` module) took ~0.75 ms of it in the worker thread, orjson takes 0.05 ms plus the
check that it may (``records.orjson_writes``, ~0.45 ms: a pass over the answer's types, level
by level); a 50-op answer 46 -> 36 µs. Where the check fails (a float, an integer past 64
bits, a key that is not text, a type orjson writes otherwise) the answer is
``JSONResponse``'s, which also refuses NaN as before. Not for small answers (a token's: the
check costs more than it saves). tests/sync/test_wire.py holds both ways to the same bytes
and headers.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import JSONResponse, Response

from app.core.records import orjson_writes


def json_response(value: Any) -> Response:
    """``JSONResponse(value)``: the same status, headers and body bytes."""
    if orjson_writes(value):
        try:
            return Response(orjson.dumps(value), media_type=JSONResponse.media_type)
        except TypeError:  # e.g. a lone surrogate: JSONResponse says what is wrong
            pass
    return JSONResponse(value)
