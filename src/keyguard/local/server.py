"""`keyguard emulator`: the emulator keyguard's own tests and demo use, served on an address of this
machine, so that `keyguard demo|invoke|contain|status|release --endpoint-url`, `sam local invoke` and a
user's own scripts rehearse against the same thing.

It is moto's server (every AWS API moto has) with keyguard.local.service installed in it: users'
permissions boundaries, CloudTrail LookupEvents, IAM's quotas, one request at a time, and a 12-digit
access key id naming the account. Two endpoints of its own, under /_keyguard/, hold what no AWS API can
seed: POST /_keyguard/cloudtrail {"account", "records"} adds CloudTrail records to an account's event
history; POST /_keyguard/cloudtrail/forget {"account", "keys"} drops the records of those access keys.
GET /_keyguard/health answers {"keyguard": "emulator"}.
"""

from __future__ import annotations

import json
import threading
from typing import Any

from keyguard.local import service

ADMIN = "/_keyguard/"


class _Admin:
    """WSGI middleware: keyguard's own endpoints, everything else to moto."""

    def __init__(self, app: Any) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        path = environ.get("PATH_INFO", "")
        if not path.startswith(ADMIN):
            return self.app(environ, start_response)
        status, body = self._answer(path[len(ADMIN) :], environ)
        data = json.dumps(body).encode()
        start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
        return [data]

    def _answer(self, path: str, environ: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        method = environ.get("REQUEST_METHOD")
        if path == "health" and method == "GET":
            return "200 OK", {"keyguard": "emulator"}
        if method != "POST" or path not in ("cloudtrail", "cloudtrail/forget"):
            return "404 Not Found", {"error": f"no such endpoint: {method} {ADMIN}{path}"}
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = json.loads(environ["wsgi.input"].read(length) or b"{}")
            account = str(body["account"])
            if not service.ACCOUNT_ID.fullmatch(account):
                raise ValueError(f"account must be 12 digits, got {account!r}")
            if path == "cloudtrail":
                records = body["records"]
                if not isinstance(records, list) or not all(isinstance(r, dict) and "eventTime" in r for r in records):
                    raise ValueError("records must be a list of CloudTrail records (each with eventTime)")
                service.trail(account).records.extend(records)
                return "200 OK", {"added": len(records)}
            keys = body["keys"]
            if not isinstance(keys, list):
                raise ValueError("keys must be a list of access key ids")
            return "200 OK", {"dropped": service.forget(account, {str(k) for k in keys})}
        except (KeyError, ValueError, TypeError) as e:
            return "400 Bad Request", {"error": f"{type(e).__name__}: {e}"}


class Emulator:
    """The emulator on `host:port` in a thread of this process (port 0: any free port)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 5000) -> None:
        self.host, self.port = host, port
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._quotas = service.quotas_enforced()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> Emulator:
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
        from werkzeug.serving import make_server

        service.install()
        self._quotas.__enter__()  # IAM's quotas for as long as it serves
        app = _Admin(DomainDispatcherApplication(create_backend_app))
        self._server = make_server(self.host, self.port, app, threaded=True)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="keyguard-emulator", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._quotas.__exit__(None, None, None)
        self._server = self._thread = None

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *_: Any) -> None:
        self.stop()


def serve(host: str, port: int, account: str | None = None, quiet: bool = False) -> int:
    """Serve in the foreground until interrupted (Ctrl-C, SIGTERM)."""
    import os
    import signal
    import sys

    if account:
        os.environ["MOTO_ACCOUNT_ID"] = account  # every request, whatever its credentials
    os.environ.setdefault("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")  # ~1,200 images per region it never needs
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    with Emulator(host, port) as emulator:
        if not quiet:
            print(f"keyguard emulator on {emulator.url} (account {account or 'from the access key id'})", flush=True)
            print(f"  point at it: AWS_ENDPOINT_URL={emulator.url}; stop with Ctrl-C", file=sys.stderr, flush=True)
        stop.wait()
    return 0


def wait(url: str, seconds: float = 20.0) -> bool:
    """True once the emulator at `url` answers its health check, False after `seconds`."""
    import time
    import urllib.request

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}{ADMIN}health", timeout=2) as answer:  # noqa: S310  # nosec B310
                if json.loads(answer.read()).get("keyguard") == "emulator":
                    return True
        except (OSError, ValueError):
            pass
        time.sleep(0.2)
    return False


if __name__ == "__main__":  # `python -m keyguard.local.server wait URL`: for scripts that start one
    import sys

    if len(sys.argv) != 3 or sys.argv[1] != "wait":
        sys.exit("usage: python -m keyguard.local.server wait URL")
    if not wait(sys.argv[2]):
        sys.exit(f"no keyguard emulator answered at {sys.argv[2]} within 20 s")
