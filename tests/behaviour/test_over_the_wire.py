"""keyguard against an emulator over HTTP (`keyguard emulator` on 127.0.0.1), through the `keyguard` command."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from keyguard.cli import main
from keyguard.local.server import Emulator
from tests.conftest import EVENTS


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def moto_server() -> Iterator[str]:
    with Emulator("127.0.0.1", 0) as emulator:
        yield emulator.url


def test_invoke_contains_and_investigates_on_the_emulator(moto_server: str, capsys) -> None:
    code = main(["--endpoint-url", moto_server, "invoke", str(EVENTS / "guardduty-iam-user.json")])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "outcome: contained" in out
    assert "outcome: investigated" in out  # the investigation ran over the wire too
    assert "topic delivered 2 message(s)" in out
    assert "user/backdoor-admin inline policies: [] -> ['keyguard-quarantine']" in out
    lines = [line for line in out.splitlines() if "user/alice key" in line]
    assert sorted(line.rsplit(": ", 1)[1] for line in lines) == ["Active -> Active", "Active -> Inactive"]
    assert "user/alice inline policies: [] -> ['keyguard-quarantine']" in out


def test_unreachable_endpoint_is_one_clear_line(capsys) -> None:
    code = main(
        ["--endpoint-url", f"http://127.0.0.1:{_free_port()}", "invoke", str(EVENTS / "guardduty-iam-user.json")]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("keyguard: ") and len(err.strip().splitlines()) == 1
    assert "Traceback" not in err


def test_missing_event_file_is_one_clear_line(capsys) -> None:
    assert main(["invoke", "no-such-event.json"]) == 2
    assert "no-such-event.json" in capsys.readouterr().err
