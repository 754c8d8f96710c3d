"""keyguard.sources.federation without AWS: which CloudTrail records name a federated session's issuer."""

from __future__ import annotations

import json
from typing import Any

import pytest

from keyguard.incident import PrincipalType
from keyguard.sources import federation
from tests.conftest import incident_from

SESSION = incident_from("guardduty-federated-user.json")


def _record(**identity: Any) -> str:
    base = {
        "type": "FederatedUser",
        "accessKeyId": SESSION.key_id,
        "sessionContext": {
            "sessionIssuer": {
                "type": "IAMUser",
                "principalId": "AIDAJQABLZS4A3QDU576Q",
                "accountId": "123456789012",
                "userName": "broker",
            }
        },
    }
    base.update(identity)
    return json.dumps({"userIdentity": base})


def test_the_finding_names_a_federated_session_not_a_user() -> None:
    assert SESSION.principal_type is PrincipalType.FEDERATED_USER and SESSION.key_id.startswith("ASIA")


def test_aws_s_record_of_the_session_s_call_names_the_issuer() -> None:
    assert federation._issuer_of(_record(), SESSION) == ("broker", "AIDAJQABLZS4A3QDU576Q")


@pytest.mark.parametrize(
    "raw",
    [
        _record(type="AssumedRole"),  # a role session is not a federation token
        _record(accessKeyId="ASIAOTHERKEYEXAMPLE1"),  # another session's call
        _record(sessionContext={"sessionIssuer": {"type": "Role", "userName": "x", "principalId": "AROA"}}),
        _record(
            sessionContext={
                "sessionIssuer": {
                    "type": "IAMUser",
                    "userName": "x",
                    "accountId": "210987654321",
                    "principalId": "AIDA",
                }
            }
        ),
        _record(sessionContext={}),
        _record(
            sessionContext={"sessionIssuer": {"type": "IAMUser", "accountId": "123456789012", "principalId": "AIDA"}}
        ),
        "{not json",
        json.dumps(["a list"]),
        None,
    ],
)
def test_anything_else_names_nobody(raw: Any) -> None:
    assert federation._issuer_of(raw, SESSION) is None


class _Clients:
    def __init__(self, pages: list[dict], user_id: str = "AIDAJQABLZS4A3QDU576Q") -> None:
        self.pages, self.user_id, self.asked = pages, user_id, []

    def get(self, service: str, region: str | None = None) -> Any:
        return self

    def lookup_events(self, **args: Any) -> dict:
        self.asked.append(args)
        return self.pages.pop(0) if self.pages else {"Events": []}

    @property
    def iam(self) -> Any:
        return self

    def get_user(self, UserName: str) -> dict:
        return {"User": {"UserName": UserName, "UserId": self.user_id}}


def test_resolve_reads_a_second_page_and_confirms_with_iam() -> None:
    clients = _Clients(
        [{"Events": [{"CloudTrailEvent": "{}"}], "NextToken": "t"}, {"Events": [{"CloudTrailEvent": _record()}]}]
    )
    out = federation.resolve(SESSION, clients)
    assert (out.principal_type, out.principal_name, out.not_evidence) == (PrincipalType.IAM_USER, "broker", None)
    assert clients.asked[1]["NextToken"] == "t"


def test_resolve_never_takes_a_user_iam_does_not_confirm() -> None:
    out = federation.resolve(SESSION, _Clients([{"Events": [{"CloudTrailEvent": _record()}]}], user_id="AIDANEWUSER"))
    assert out.principal_type is PrincipalType.FEDERATED_USER and "unique id changed" in out.not_evidence


def test_other_incidents_pass_through_untouched() -> None:
    other = incident_from("guardduty-iam-user.json")
    assert federation.resolve(other, _Clients([])) is other


def test_another_account_s_session_is_not_looked_up() -> None:
    clients = _Clients([{"Events": [{"CloudTrailEvent": _record()}]}])
    assert federation.resolve(SESSION, clients, account="210987654321") is SESSION and clients.asked == []
