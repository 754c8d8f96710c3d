"""`make sam-local`'s pure parts (the run itself needs Docker and is `make sam-local`, not pytest): the local
copy of the template, the safe default of a local invoke, and the forms it compares."""

import importlib.util
import tomllib
from pathlib import Path

import pytest

from keyguard.local.emulator import load_template

REPO = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("sam_local", REPO / "scripts" / "sam_local.py")
sam_local = importlib.util.module_from_spec(spec)
spec.loader.exec_module(sam_local)


@pytest.fixture
def local(tmp_path):
    path = tmp_path / ".aws-sam" / "local" / "template.yaml"
    path.parent.mkdir(parents=True)
    path.write_text(sam_local.local_template(REPO / "template.yaml"))
    return load_template(path)


def test_the_local_template_runs_natively_from_src_and_can_be_pointed_at_an_emulator(local):
    function = local["Globals"]["Function"]
    assert function["Architectures"] == ["x86_64"]
    assert function["CodeUri"] == "../../src/"  # the copy lives two folders down
    assert function["Environment"]["Variables"]["AWS_ENDPOINT_URL"] == ""  # declared, so --env-vars may set it


def test_the_local_template_changes_nothing_else(local):
    real = load_template(REPO / "template.yaml")
    for what in ("Architectures", "CodeUri", "Environment"):
        local["Globals"]["Function"].pop(what)
        real["Globals"]["Function"].pop(what)
    assert local == real


def test_a_template_of_another_shape_is_refused_rather_than_tested_as_something_else(tmp_path):
    other = tmp_path / "template.yaml"
    other.write_text((REPO / "template.yaml").read_text().replace("Architectures: [arm64]", "Architectures: [x86_64]"))
    with pytest.raises(SystemExit, match="Architectures"):
        sam_local.local_template(other)


def test_a_local_invoke_is_a_dry_run_unless_the_user_says_otherwise():
    config = tomllib.loads((REPO / "samconfig.toml").read_text())
    overrides = config["default"]["local_invoke"]["parameters"]["parameter_overrides"]
    assert 'Mode="dry-run"' in overrides


def test_ids_that_differ_between_the_two_runs_compare_equal_and_named_keys_keep_their_name():
    names = {"AKIAEMULATEDEXAMPLE1": "AKIAIOSFODNN7EXAMPLE"}
    assert sam_local.canon("key#AKIAEMULATEDEXAMPLE1", names) == "key#AKIAIOSFODNN7EXAMPLE"
    assert sam_local.canon("key#AKIAEMULATEDEXAMPLE2", names) == "key#<key>"
    assert sam_local.canon("id#nn57wg51w4fz0rk0fldi state", {}) == sam_local.canon("id#vk77n2fm91e8 state", {})
    assert sam_local.canon("keyguard-deny-all-4a1505f6", {}) == "keyguard-deny-all"
    assert sam_local.canon("arn:aws:iam::012345678912:user/a", {}) == sam_local.canon(
        "arn:aws:iam::123456789012:user/a", {}
    )


def test_a_result_is_compared_by_what_it_decided():
    result = {
        "responses": [
            {"incident": "guardduty:abc:AKIAEMULATEDEXAMPLE1", "outcome": "contained", "notification": "duplicate"}
        ]
    }
    assert sam_local.result_shape(result, {}) == [
        ".responses[].notification=duplicate",
        ".responses[].outcome=contained",
    ]
    assert sam_local.result_shape({"batchItemFailures": [{"itemIdentifier": "m1"}]}, {}) == [".batchItemFailures=1"]


def test_a_failed_invocation_differs_from_a_good_one():
    want = [sam_local.Step(function="F", call="event", error=None, outcomes=["contained"], result=[])]
    have = [sam_local.Step(function="F", call="event", error="ResponseFailed", outcomes=["failed"], result=[])]
    problems = sam_local.compare(want, have)
    assert any("error" in p for p in problems) and any("outcomes" in p for p in problems)
    assert sam_local.compare(want, want) == []


def test_a_redelivery_that_announces_again_fails_even_where_keyguard_in_process_does_the_same():
    again = [sam_local.Step(function="F", call="redelivery", error=None, outcomes=["contained"], result=[])]
    assert any("announced again" in p for p in sam_local.compare(again, again))


def _user(named=None, others=("Active",), policies=(), boundary="none"):
    return {"named keys": named or {}, "other keys": list(others), "policies": list(policies), "boundary": boundary}


CONTAINED_ALICE = {
    "user/alice": _user(
        {"AKIAIOSFODNN7EXAMPLE": "Inactive"}, ("Active",), ("keyguard-quarantine",), "keyguard-DenyAllPolicy"
    ),
    "user/bystander-dana": _user(),
    "ledger": ["key#AKIAIOSFODNN7EXAMPLE state held=True", "user#alice state held=True"],
}
ANNOUNCED = [sam_local.Step(function="GuardDutyFunction", call="event", error=None, outcomes=["contained"], result=[])]


def test_a_containment_as_keyguard_does_it_breaks_no_invariant():
    assert sam_local.invariants(CONTAINED_ALICE, ANNOUNCED) == []


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"user/bystander-dana": _user(policies=("keyguard-quarantine",))}, "bystander"),
        (
            {"user/alice": _user({"AKIAIOSFODNN7EXAMPLE": "Inactive"}, ("Active",), ("keyguard-quarantine",))},
            "boundary",
        ),
        ({"user/alice": _user({"AKIAIOSFODNN7EXAMPLE": "Inactive"}, ("Inactive",))}, "did not name"),
        ({"user/alice": _user({"AKIAIOSFODNN7EXAMPLE": "Active"})}, "every named key is Active"),
        ({"ledger": ["user#alice state held=True"]}, "ledger holds no key"),
    ],
)
def test_what_no_event_may_leave_behind_fails_whatever_keyguard_in_process_did(change, words):
    problems = sam_local.invariants({**CONTAINED_ALICE, **change}, ANNOUNCED)
    assert any(words in p for p in problems), problems
