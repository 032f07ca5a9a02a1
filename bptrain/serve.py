"""bptrain serve: a trained model's predictions over HTTP, FastAPI on uvicorn (the `serve` extra).

POST /predict takes rows as JSON (`{"rows": [{column: value, ...}, ...]}`) or as a CSV body
(`Content-Type: text/csv`) and answers `{"predictions": [...], "warnings": [...]}`, one object per
row holding bptrain predict's columns (`proba=true` adds the probabilities); GET /schema and
GET /health describe the model; /docs is the OpenAPI page of these typed models. Predict's schema
contract becomes statuses: a missing column or a value that cannot be used is 422 with predict's
message, a category the model never saw 200 with a warning (422 with `strict=true`), a body over
the limit 413, malformed JSON 400, another content type 415; anything unforeseen is a 500 with a
one-line message, never a traceback. One line per request goes to stderr.

Each worker process loads the model once and answers its requests one at a time on its event loop
(a network's buffers are its own); `--workers N` runs N processes on one socket. SIGTERM and SIGINT
stop accepting connections, let the requests in flight finish (up to GRACE_SECONDS), and exit 0.
"""

import errno
import io
import json
import os
import signal
import socket
import sys
import time
from typing import Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bptrain.errors import BptrainError, ConfigError, extra_needed

SOURCE = "request"  # what messages call the rows of a request, as predict names a file
STRICT_HINT = ". Send strict=true to make this an error"
STRICT_SETTING = "strict=true"  # the query parameter that makes an unseen category an error
GRACE_SECONDS = 30  # how long a stop waits for the requests in flight
DRAINED = 4  # a body over the limit is read to its end up to this many times the limit, then the connection closes
RUN_VARIABLE, BODY_VARIABLE = "BPTRAIN_SERVE_RUN", "BPTRAIN_SERVE_MAX_BODY"  # what each worker process loads
JSON, CSV = "application/json", "text/csv"
# Up to this many lines, a plain body is read without pandas (bptrain.data.plaincsv), as predict reads
# a small file. Measured on iris: one row 0.4 ms against pandas' 1.6 ms, 100 rows 0.8 against 1.6 ms,
# 1,000 rows 6 against 2.9 ms (reading, preprocessing and the forward pass).
PLAIN_ROWS = 100

Value = Union[str, float, int, bool, None]


class PredictRequest(BaseModel):
    """Rows to predict for: each a mapping of column names to values (the target may be absent, extra columns are ignored)."""

    model_config = ConfigDict(extra="forbid")
    rows: list[dict[str, Value]]


class PredictResponse(BaseModel):
    """One object per row, in the order given: bptrain predict's columns (`prediction`, with proba=true `proba_<class>`)."""

    predictions: list[dict[str, Union[str, float, int]]]
    warnings: list[str] = Field(description="e.g. categories the model never saw, encoded as unknown")


class Problem(BaseModel):
    detail: str = Field(description="what is wrong, where, and what to do; the text bptrain predict prints")


class Health(BaseModel):
    status: Literal["ok"]
    model: str
    task: str


class Schema(BaseModel):
    """What the model reads and writes (bptrain.Model.schema)."""

    task: str
    targets: list[str]
    classes: list[str]
    features: dict[str, dict[str, Any]]
    inputs: list[str]
    outputs: list[str]
    dtype: str


class _Refused(Exception):
    def __init__(self, status: int, detail: str):
        self.status, self.detail = status, detail


# --- the application -----------------------------------------------------------------------------


def create_app(model, max_body: int):
    """The FastAPI application serving `model` (a bptrain.Model), refusing bodies over `max_body` bytes."""
    from fastapi import FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse, Response

    app = FastAPI(
        title="bptrain serve",
        description=f"Predictions of the bptrain model {model.path} ({model.task}).",
        version=_version(),
    )
    schema = Schema(**model.schema)
    example = {name: next(iter(c["categories"] + c["other"]), "") if c["kind"] == "categorical" else 0.0 for name, c in schema.features.items()}  # for /docs
    problems = {status: {"model": Problem} for status in (400, 413, 415, 422, 500)}

    def problem(status: int, detail: str) -> Response:
        return JSONResponse({"detail": detail}, status_code=status, headers={"Connection": "close"} if status == 413 else None)

    @app.exception_handler(RequestValidationError)
    async def bad_parameter(request: Request, exc: RequestValidationError) -> Response:
        first = exc.errors()[0]
        where = " ".join(str(part) for part in first["loc"])
        return problem(422, f"{where}: {first['msg']}")

    @app.exception_handler(Exception)
    async def internal(request: Request, exc: Exception) -> Response:  # a bug: said in one line, logged
        return problem(500, _internal(exc))

    @app.get("/health", response_model=Health)
    async def health() -> Health:
        return Health(status="ok", model=str(model.path), task=model.task)

    @app.get("/schema", response_model=Schema)
    async def get_schema() -> Schema:
        return schema

    @app.post(
        "/predict",
        response_model=PredictResponse,
        responses=problems,
        openapi_extra={"requestBody": {"required": True, "content": {
            JSON: {"schema": PredictRequest.model_json_schema(), "example": {"rows": [example]}},
            CSV: {"schema": {"type": "string"}, "example": ",".join(example) + "\n" + ",".join(map(str, example.values())) + "\n"},
        }}},
    )
    async def predict(request: Request, proba: bool = False, strict: bool = False) -> Response:
        """Predictions for the rows of the body: JSON `{"rows": [...]}` or a CSV file (`Content-Type: text/csv`)."""
        try:
            return Response(await _predict(model, request, max_body, proba, strict), media_type=JSON)
        except _Refused as e:
            return problem(e.status, e.detail)
        except BptrainError as e:  # the rows do not fit the model: predict's message
            return problem(422, str(e))
        except Exception as e:  # noqa: BLE001 - a bug: said in one line, logged
            return problem(500, _internal(e))

    return _Logged(app)


async def _predict(model, request, max_body: int, proba: bool, strict: bool) -> bytes:
    """The answer's JSON for the rows of the request; _Refused or BptrainError when there is none."""
    if proba and model.task == "regression":
        raise _Refused(422, "proba=true: this model does regression; there are no class probabilities to add")
    rows = _rows(await _body(request, max_body), request.headers.get("content-type", JSON), model)
    decimal = None  # of the text the rows were read from: the model's own, unless a body says otherwise
    if isinstance(rows, tuple):  # CSV text, and how to read it
        data, options = rows
        decimal = options.decimal
        rows = model._plain(data, options, strict=strict) if data.count(b"\n") <= PLAIN_ROWS else None
        if rows is None:
            from bptrain.data import reading

            rows = reading.read_table(reading.STDIN, stdin=io.BytesIO(data), options=options, name=SOURCE, text=model._trained.prep.categorical)
    request.state.rows = len(rows)
    if len(rows) == 0:
        return _answer(model, proba, [], None)
    columns, warning = model._columns(rows, SOURCE, proba=proba, strict=strict, hint=STRICT_HINT, setting=STRICT_SETTING, decimal=decimal)
    return _answer(model, proba, columns, warning)


def _version() -> str:
    from bptrain import __version__

    return __version__


async def _body(request, limit: int) -> bytes:
    """The request's body; 413 once it is known to pass `limit` bytes. The rest of such a body is
    read and dropped (up to DRAINED times the limit), since a client that is still sending when
    the connection closes never reads the answer."""
    declared = request.headers.get("content-length", "")
    refused = _too_large(limit) if declared.isdigit() and int(declared) > limit else None
    parts, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if refused is None and size > limit:
            refused = _too_large(limit)
        if refused is not None and size > DRAINED * limit:
            break
        if refused is None:
            parts.append(chunk)
    if refused is not None:
        raise refused
    return b"".join(parts)


def _too_large(limit: int) -> _Refused:
    return _Refused(
        413, f"{SOURCE}: the body is larger than the {limit:,} bytes this server takes (bptrain serve --max-body-mb); send the rows in smaller batches"
    )


def _rows(body: bytes, content_type: str, model):
    """The rows of a JSON or CSV body: (CSV text, the ReadOptions to read it by), or a DataFrame of
    rows without columns."""
    import pandas as pd

    media = content_type.split(";")[0].strip().lower()
    if media == CSV:
        return body, model._trained.prep.read
    if media != JSON:
        raise _Refused(415, f"Content-Type {media or '(none)'}: send {JSON} ({{\"rows\": [...]}}) or {CSV} (a header line, then rows)")
    try:
        rows = PredictRequest.model_validate_json(body).rows
    except ValidationError as e:
        first = e.errors()[0]
        if first["type"] == "json_invalid":
            raise _Refused(400, f"{SOURCE}: malformed JSON: {first['msg'].removeprefix('Invalid JSON: ')}") from None
        where = ".".join(str(part) for part in first["loc"]) or "body"
        raise _Refused(422, f"{SOURCE}: {where}: {first['msg']}; send {{\"rows\": [{{column: value, ...}}, ...]}}") from None
    names = list(rows[0]) if rows else []
    if any(row.keys() != rows[0].keys() for row in rows):  # a column a row lacks is missing there
        names = list(dict.fromkeys(name for row in rows for name in row))
    if not rows or not names:
        return pd.DataFrame(index=pd.RangeIndex(len(rows)))
    return _as_csv(rows, names)


def _as_csv(rows: list[dict[str, Value]], names: list[str]):
    """The JSON rows as a CSV body of the same rows, to be read as one: each value written as its
    cell (null or an absent key an empty cell, true/false as True/False), the text read by bptrain's
    CSV reader (`,`, `.` decimals). So a JSON string follows the CSV rules: "" and "NA" are missing
    values, "2008.0" in a column of numbers is the number 2008, text in a numeric column is an error.
    A row with a carriage return in its text has its cells quoted (predictions.write_csv), as a CSV
    body needs them: bare, it would end the row there."""
    from bptrain.data import reading
    from bptrain.predictions import write_csv

    text = io.StringIO()
    cells = [["" if (v := row.get(name)) is None else repr(v) if isinstance(v, float) else str(v) for name in names] for row in rows]
    write_csv(text, [names, *cells])
    return text.getvalue().encode("utf-8"), reading.ReadOptions(delimiter=",")


def _answer(model, proba: bool, columns: list, warning: str | None) -> bytes:
    """The JSON of PredictResponse, written as text: one object per row, numbers as predict writes them."""
    from bptrain import predictions

    keys = [json.dumps(name) + ": " for name in predictions.header(model._trained.prep, proba)]
    texts = [predictions.json_texts(c) for c in columns]
    records = ", ".join("{" + ", ".join(k + v for k, v in zip(keys, row)) + "}" for row in zip(*texts))
    return f'{{"predictions": [{records}], "warnings": {json.dumps([warning] if warning else [])}}}'.encode()


def _internal(exc: Exception) -> str:
    _log(f"internal error: {type(exc).__name__}: {exc}")
    return f"internal error ({type(exc).__name__}); this is a bug in bptrain, and the server's log has the details"


def _log(line: str) -> None:
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


class _Logged:
    """ASGI middleware: one line per request on stderr, `POST /predict 200 3 rows 1.2 ms` (`-` for no rows)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start, status = time.perf_counter(), [500]

        async def sending(message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            rows = scope.get("state", {}).get("rows")
            counted = "-" if rows is None else f"{rows} row{'' if rows == 1 else 's'}"
            _log(f"{scope['method']} {scope['path']} {status[0]} {counted} {(time.perf_counter() - start) * 1000:.1f} ms")


def worker_app():
    """The application of one worker process of `--workers N`: the model named in its environment, loaded once."""
    from bptrain import api

    return create_app(api.load(os.environ[RUN_VARIABLE]), int(os.environ[BODY_VARIABLE]))


# --- running -------------------------------------------------------------------------------------


def require() -> None:
    """ConfigError naming the extra to install when fastapi or uvicorn is missing."""
    try:
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as e:
        raise extra_needed(f"bptrain serve needs fastapi and uvicorn ({e.name or 'a module'} is missing)", "serve") from None


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on host:port; ConfigError when the port is taken or the host is not this machine's."""
    try:
        family, kind, proto = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)[0][:3]
    except socket.gaierror as e:
        raise ConfigError(f"--host {host}: not an address this machine can listen on ({e.strerror}); e.g. --host 127.0.0.1") from None
    # proto IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on connections of such a socket, and without
    # it a response's body waits for the client's delayed acknowledgement of its head (40 ms on Linux)
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as e:
        sock.close()
        if e.errno == errno.EADDRINUSE:
            free = _free_port(family, host, port)
            other = f"e.g. --port {free}, free now" if free is not None else "or --port 0 for any free one"
            raise ConfigError(f"--port {port}: {host}:{port} is in use by another process; stop it, or choose another port, {other}") from None
        if e.errno == errno.EACCES:
            raise ConfigError(f"--port {port}: no permission to listen on {host}:{port} (ports below 1024 need privileges); choose one from 1024") from None
        raise ConfigError(f"--host {host} --port {port}: cannot listen there ({e.strerror})") from None
    sock.set_inheritable(True)
    return sock


def _free_port(family: int, host: str, taken: int, tries: int = 20) -> int | None:
    """The first of the `tries` ports after `taken` that `host` can listen on now (tried as `bind`
    tries, then let go); None when none is."""
    for port in range(taken + 1, min(taken + 1 + tries, 65536)):
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((host, port))
                probe.listen(1)
            except OSError:
                continue
            return port
    return None


def serve(run, *, host: str, port: int, workers: int, max_body: int) -> None:
    """Serve the model of `run` until SIGTERM or SIGINT; the model is loaded (and checked) before the port is taken."""
    require()
    import uvicorn

    from bptrain import api

    model = api.load(run)
    sock = bind(host, port)
    address, bound = sock.getsockname()[:2]
    url = f"http://{address if sock.family == socket.AF_INET else f'[{address}]'}:{bound}"
    settings = {"log_level": "warning", "access_log": False, "lifespan": "off", "timeout_graceful_shutdown": GRACE_SECONDS}
    ready = f"serving {model.path} on {url} ({workers} worker{'s' if workers > 1 else ''}); API docs at {url}/docs; stop with Ctrl-C or SIGTERM"
    if workers == 1:
        server = uvicorn.Server(uvicorn.Config(create_app(model, max_body), **settings))
        _until_stopped(lambda signum: setattr(server, "should_exit", True))
        _log(ready)
        server.run(sockets=[sock])
    else:
        from uvicorn.supervisors import Multiprocess

        os.environ[RUN_VARIABLE], os.environ[BODY_VARIABLE] = str(model.path), str(max_body)
        config = uvicorn.Config("bptrain.serve:worker_app", factory=True, workers=workers, **settings)
        supervisor = Multiprocess(config, sockets=[sock])  # its own signal handlers from here on
        _log(ready)
        supervisor.run()
    _log("stopped")


def _until_stopped(stop) -> None:
    """SIGINT and SIGTERM call `stop(signum)` until uvicorn takes them over to serve; it raises the
    signals it handled again once it has stopped, and they must then end nothing."""
    for s in (signal.SIGINT, signal.SIGTERM):
        signal.signal(s, lambda signum, frame: stop(signum))
