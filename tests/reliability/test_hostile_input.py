"""Hostile and malformed input: hypothesis builds each trigger's event from its real shape (events/), then
names keys of the wrong form or of someone else, forges owners, swaps account ids, fills fields with unicode,
control characters, huge text and wrong types, empties or floods lists, drops and adds fields and sends
aws.*-looking events with unexpected detail-types. Each event goes through the trigger's Lambda handler
against one emulated account with a fixed population; after each example the account is put back.

Invariants, from the emulator's IAM state before and after each example:
1. only keyguard's domain errors (KeyguardError) escape a handler;
2. dry-run changes nothing;
3. no key the event does not name changes, and a named key only goes Active -> Inactive (never deleted,
   never activated);
4. policies and tags change only on the IAM-verified owner of a named long-term key, or on the principal a
   GuardDuty finding names for credentials IAM cannot trace to an owner (session keys, roles);
5. protected principals, keyguard's own roles and service-linked roles never change; exempt users never
   change on a CreateAccessKey event;
6. nothing is silent: every incident an accepted event yields is announced (and handed to investigation):
   the notification never fails because of what the event contains.

Examples per trigger: 1,000 in CI (the "ci" profile, selected when CI is set), fewer locally (conftest.py).
"""

from __future__ import annotations

import copy
import json
from collections import Counter
from collections.abc import Mapping
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keyguard.errors import KeyguardError, MalformedEvent, ResponseFailed
from tests.conftest import load_event
from tests.reliability import world

ACCOUNT = world.ACCOUNT
OTHER_ACCOUNT = "210987654321"
OWN_ROLES = (
    "keyguard-GuardDutyFunctionRole-1A2B3C4D5E6F",
    "keyguard-HealthFunctionRole-1A2B3C4D5E6F",
    "keyguard-AccessKeyCreatedFunctionRole-1A2B3C4D5E6F",
)
SERVICE_LINKED = "AWSServiceRoleForSupport"
PROTECTED_USER, PROTECTED_ROLE, EXEMPT_USER = "break-glass", "break-glass-role", "ci-bot"
USERS = {"alice": 2, "bob": 1, PROTECTED_USER: 1, EXEMPT_USER: 1, "bystander-dana": 1}
ROLES = ("web-app-role", PROTECTED_ROLE, SERVICE_LINKED, *OWN_ROLES)
# AWS's documented example key ids: well-formed, in no account
EXAMPLE_KEYS = ("AKIAIOSFODNN7EXAMPLE", "AKIAI44QH8DHBEXAMPLE")
EXAMPLE_SESSION_KEYS = ("ASIAIOSFODNN7EXAMPLE", "ASIAI44QH8DHBEXAMPLE")

EXAMPLES: dict[str, Counter] = {}  # trigger -> counts, printed at the end of the run (conftest.py)


# ------------------------------------------------------------------------------------------- the account


class Population:
    """One emulated account: users with keys (a protected one, an exempt one), roles (a protected one,
    keyguard's own, a service-linked one), keyguard's topic and queues."""

    def __init__(self) -> None:
        self.stage = world.Stage()
        self.env = self.stage.env
        iam = self.env.clients.iam
        self.keys: dict[str, list[str]] = {}
        for user, n in USERS.items():
            # the tag no longer exempts (the key holder can write it); ExemptPrincipals does (settings below)
            tags = [{"Key": "keyguard:exempt", "Value": "true"}] if user == EXEMPT_USER else []
            iam.create_user(UserName=user, Tags=tags)
            self.keys[user] = [iam.create_access_key(UserName=user)["AccessKey"]["AccessKeyId"] for _ in range(n)]
        trust = {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}
            ],
        }
        for role in ROLES:
            iam.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps(trust))
        self.baseline = world.iam_state()
        self.all_keys = [k for ks in self.keys.values() for k in ks]
        # A topic of its own with no subscriber: SNS still checks every message (its size, subject and
        # attributes), without fanning thousands of them out to a queue nobody reads.
        self.topic_arn = self.env.clients.get("sns").create_topic(Name="keyguard-hostile")["TopicArn"]

    def settings(self, mode: str) -> Any:
        # No idempotency table: each example must be announced on its own, not as a duplicate of an
        # earlier one (de-duplication is the fault matrix's and the redelivery tests' subject).
        variables = {
            "KEYGUARD_MODE": mode,
            "KEYGUARD_TOPIC_ARN": self.topic_arn,
            "KEYGUARD_PROTECTED_PRINCIPALS": f"{PROTECTED_USER}, arn:aws:iam::{ACCOUNT}:role/{PROTECTED_ROLE}",
            "KEYGUARD_OWN_ROLES": ",".join(OWN_ROLES),
            "KEYGUARD_EXEMPT_PRINCIPALS": f"user/{EXEMPT_USER}",
        }
        if getattr(self.env, "investigation_url", None):
            variables["KEYGUARD_INVESTIGATION_QUEUE_URL"] = self.env.investigation_url
        from keyguard.settings import Settings

        return Settings.from_env(variables)


@pytest.fixture(scope="module")
def population():
    p = Population()
    yield p
    p.stage.close()


# ------------------------------------------------------------------------------------------- strategies

JSON_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**64),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
)
JUNK = st.recursive(
    JSON_SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=8,
)
CONTROL = "\x00\n\r\t\x1b\u2028\u200b\ufeff"
HOSTILE_TEXT = st.one_of(
    st.text(max_size=40),  # any unicode, surrogates excluded by hypothesis
    st.text(alphabet=st.sampled_from(CONTROL + "aé漢🔑"), min_size=1, max_size=30),
    st.sampled_from(["é", "漢", "🔑", "\u202e", "A"]).flatmap(lambda c: st.integers(2000, 2200).map(lambda n: c * n)),
    st.integers(2049, 4000).map(lambda n: "x" * n),  # over keyguard's 2048-character cap
    st.just(""),
    st.just("   "),
)
TEXT = st.one_of(HOSTILE_TEXT, JUNK)


def _key_variants(key: str) -> list[str]:
    """Wrong forms of a real key id: each must never reach that key."""
    return [
        key.lower(),
        key + "\n",
        " " + key,
        key[:-1],
        key + "A",
        key.replace("A", "\u0410", 1),  # Cyrillic A
        key[:-1] + ("B" if key[-1] != "B" else "C"),  # well-formed, in no account
        "ASIA" + key[4:],
    ]


def well_formed_keys(p: Population) -> st.SearchStrategy[str]:
    """Key ids of the right form: the account's, AWS's examples (in no account), near misses."""
    near = [k[:-1] + ("B" if k[-1] != "B" else "C") for k in p.all_keys]
    return st.one_of(
        st.sampled_from(p.all_keys),
        st.sampled_from(p.all_keys),
        st.sampled_from(EXAMPLE_KEYS + EXAMPLE_SESSION_KEYS),
        st.sampled_from(near),
    )


def _owner_or_other(draw: Any, p: Population, key: Any) -> str:
    """The key's real owner (so that events reach containment) or, as often, a forged one."""
    owner = next((u for u, keys in p.keys.items() if key in keys), None)
    return owner if owner and draw(st.booleans()) else draw(PRINCIPALS)


def key_ids(p: Population) -> st.SearchStrategy[Any]:
    variants = [v for k in p.all_keys for v in _key_variants(k)]
    return st.one_of(
        st.sampled_from(p.all_keys),
        st.sampled_from(EXAMPLE_KEYS + EXAMPLE_SESSION_KEYS),
        st.sampled_from(variants),
        JUNK,
    )


PRINCIPALS = st.sampled_from([*USERS, *ROLES, "BREAK-GLASS", "Alice", "nobody"])
NAMES = st.one_of(
    st.sampled_from([*USERS, *ROLES, "BREAK-GLASS", "Alice", "nobody", f"arn:aws:iam::{ACCOUNT}:user/alice"]),
    TEXT,
)
ACCOUNTS = st.one_of(
    st.sampled_from([ACCOUNT, ACCOUNT, OTHER_ACCOUNT, f"{ACCOUNT}\n", "12345678901", "1234567890123", "abcdefghijkl"]),
    st.just(int(ACCOUNT)),
    JUNK,
)
SOURCES = st.sampled_from(
    ["aws.guardduty", "aws.health", "aws.iam", "aws.ec2", "aws.guardduty ", "AWS.GUARDDUTY", "custom.app"]
)
DETAIL_TYPES = st.sampled_from(
    [
        "GuardDuty Finding",
        "GuardDuty Runtime Protection Finding",
        "AWS Health Event",
        "AWS Health Abuse Event",
        "AWS API Call via CloudTrail",
        "AWS Console Sign In via CloudTrail",
        "AWS Service Event via CloudTrail",
        "Scheduled Event",
    ]
)


def _paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node[:10]):
            out += _paths(v, (*prefix, i))
    return out


def _get(node: Any, path: tuple) -> Any:
    for part in path:
        node = node[part]
    return node


@st.composite
def mutated(draw: Any, event: dict[str, Any]) -> Any:
    """Up to three structural changes anywhere in the event: drop a field, replace it with junk or hostile
    text, add an unexpected field, wrap a value in a list, or replace the whole event."""
    if draw(st.integers(0, 30)) == 0:
        return draw(st.one_of(st.none(), st.lists(JUNK, max_size=3), st.text(max_size=10), st.integers(), st.just({})))
    for _ in range(draw(st.integers(0, 3))):
        path = draw(st.sampled_from(_paths(event)))
        how = draw(st.sampled_from(["drop", "junk", "text", "extra", "wrap"]))
        if not path:
            event = {**event, "extra": draw(JUNK)} if how == "extra" else event
            continue
        parent, last = _get(event, path[:-1]), path[-1]
        if how == "drop":
            del parent[last]
        elif how == "junk":
            parent[last] = draw(JUNK)
        elif how == "text":
            parent[last] = draw(HOSTILE_TEXT)
        elif how == "extra" and isinstance(parent[last], dict):
            parent[last][draw(st.text(min_size=1, max_size=12))] = draw(JUNK)
        elif how == "wrap":
            parent[last] = [parent[last]]
    return event


def _envelope(draw: Any, event: dict[str, Any]) -> None:
    """Another account's or a malformed account id; sometimes an aws.*-looking source or detail-type
    that is not the trigger's."""
    if draw(st.integers(0, 4)) == 0:
        event["account"] = draw(ACCOUNTS)
    if draw(st.integers(0, 9)) == 0:
        event["source"] = draw(SOURCES)
    if draw(st.integers(0, 9)) == 0:
        event["detail-type"] = draw(DETAIL_TYPES)


def _maybe(draw: Any, value: Any, strategy: st.SearchStrategy[Any], one_in: int = 3) -> Any:
    return draw(strategy) if draw(st.integers(0, one_in - 1)) == 0 else value


@st.composite
def guardduty_events(draw: Any, p: Population) -> Any:
    event = load_event(draw(st.sampled_from(["guardduty-iam-user.json", "guardduty-assumed-role-exfiltration.json"])))
    wild = draw(st.booleans())  # False: the shape holds, the values are hostile (owners, keys, text)
    d = event["detail"]
    details = d["resource"]["accessKeyDetails"]
    details["accessKeyId"] = draw(key_ids(p) if wild else well_formed_keys(p))
    details["userName"] = draw(NAMES) if wild else _owner_or_other(draw, p, details["accessKeyId"])
    types = st.sampled_from(["IAMUser", "IAMUser", "IAMUser", "AssumedRole", "Root", "FederatedUser"])
    details["userType"] = draw(st.one_of(types, TEXT) if wild else types)
    severities = st.sampled_from([8, 8.0, 5, 4, 10, 8.9, 3.9, 0] if wild else [8, 8.0, 5, 4, 10, 8.9, 3.9])
    d["severity"] = draw(st.one_of(severities, st.floats(-1, 11), JUNK) if wild else severities)
    if wild:
        d["accountId"] = _maybe(draw, d["accountId"], ACCOUNTS, 4)
        d["id"] = _maybe(draw, d["id"], TEXT, 4)
        d["type"] = _maybe(draw, d["type"], TEXT, 4)
    else:
        d["accountId"] = _maybe(draw, d["accountId"], st.sampled_from([ACCOUNT, OTHER_ACCOUNT]), 6)
        d["id"] = _maybe(draw, d["id"], HOSTILE_TEXT.filter(str.strip), 4)
    d["title"] = _maybe(draw, d["title"], TEXT)
    d["description"] = _maybe(draw, d["description"], TEXT)
    call = d["service"]["action"].setdefault("awsApiCallAction", {})
    for field in ("api", "serviceName", "userAgent"):
        call[field] = _maybe(draw, call.get(field), TEXT)
    remote = call.setdefault("remoteIpDetails", {})
    remote["ipAddressV4"] = _maybe(draw, remote.get("ipAddressV4"), TEXT, 4)
    remote["organization"] = _maybe(
        draw, remote.get("organization"), st.fixed_dictionaries({"asn": TEXT, "asnOrg": TEXT}), 4
    )
    d["service"]["additionalInfo"] = _maybe(
        draw,
        d["service"].get("additionalInfo", {}),
        st.fixed_dictionaries({"sample": st.one_of(st.booleans(), TEXT)}),
        12,
    )
    if not wild:
        return event
    _envelope(draw, event)
    return draw(mutated(event))


@st.composite
def attack_sequence_events(draw: Any, p: Population) -> Any:
    """GuardDuty attack sequences: each actor's credential, name, type and account hostile or forged."""
    names = ["guardduty-attack-sequence-iam.json", "guardduty-attack-sequence-iam-unprovable.json"]
    event = load_event(draw(st.sampled_from(names)))
    wild = draw(st.booleans())
    d = event["detail"]
    types = st.sampled_from([*["IAMUser"] * 6, "AssumedRole", "AssumedRole", "Root", "FederatedUser", "Other"])
    for actor in d["service"]["detection"]["sequence"]["actors"]:
        user = actor["user"]
        user["credentialUid"] = draw(key_ids(p) if wild else well_formed_keys(p))
        user["name"] = draw(NAMES) if wild else _owner_or_other(draw, p, user["credentialUid"])
        user["type"] = draw(st.one_of(types, TEXT) if wild else types)
        user["account"] = {"uid": draw(ACCOUNTS if wild else st.sampled_from([*[ACCOUNT] * 5, OTHER_ACCOUNT]))}
        if draw(st.integers(0, 9)) == 0:
            del user["credentialUid"]
    severities = st.sampled_from([9, 9.0, 5, 4, 10, 3.9])
    d["severity"] = draw(st.one_of(severities, st.floats(-1, 11), JUNK) if wild else severities)
    d["title"] = _maybe(draw, d["title"], TEXT)
    d["service"]["additionalInfo"] = _maybe(
        draw, d["service"]["additionalInfo"], st.fixed_dictionaries({"sample": st.one_of(st.booleans(), TEXT)}), 12
    )
    if not wild:
        return event
    _envelope(draw, event)
    return draw(mutated(event))


@st.composite
def health_events(draw: Any, p: Population) -> Any:
    event = load_event(draw(st.sampled_from(["health-credentials-exposed.json", "health-iam-quarantine.json"])))
    wild = draw(st.booleans())
    d = event["detail"]
    entity = st.one_of(
        st.builds(lambda v: {"entityValue": v}, key_ids(p) if wild else well_formed_keys(p)),
        st.builds(lambda v: {"entityValue": v, "tags": {}}, NAMES),
        JUNK,
    )
    if not wild:
        d["affectedEntities"] = draw(
            st.lists(st.builds(lambda v: {"entityValue": v}, well_formed_keys(p)), min_size=1, max_size=4).flatmap(
                lambda keys: st.lists(entity, max_size=2).map(lambda extra: keys + extra)
            )
        )
        d["eventDescription"] = _maybe(
            draw, d.get("eventDescription"), st.lists(st.fixed_dictionaries({"latestDescription": TEXT}), max_size=3)
        )
        meta = d.setdefault("eventMetadata", {})
        meta["userName"] = _maybe(draw, meta.get("userName"), PRINCIPALS, 2)  # forged: IAM is asked anyway
        meta["exposedUrl"] = _maybe(draw, meta.get("exposedUrl"), TEXT, 2)  # shown defanged (the schema checks)
        event["account"] = _maybe(draw, event["account"], st.just(OTHER_ACCOUNT), 6)
        return event
    d["affectedEntities"] = draw(
        st.one_of(
            st.lists(entity, min_size=0, max_size=4),
            # huge lists: cheap to build, and bounded work (duplicates of one key, or no key at all)
            st.tuples(st.sampled_from(p.all_keys), st.sampled_from([499, 500, 501, 5000])).map(
                lambda kn: [{"entityValue": kn[0]}] * kn[1]
            ),
            st.sampled_from([499, 500, 501, 5000]).map(lambda n: [{"entityValue": "not-a-key"}] * n),
            JUNK,
        )
    )
    d["eventTypeCode"] = _maybe(
        draw,
        d["eventTypeCode"],
        st.sampled_from(["AWS_RISK_IAM_QUARANTINE", "AWS_RISK_", "AWS_EC2_X", "aws_risk_x"]),
        4,
    )
    d["service"] = _maybe(draw, d["service"], st.sampled_from(["RISK", "risk", "EC2", ""]), 6)
    d["eventArn"] = _maybe(draw, d.get("eventArn"), TEXT, 4)
    d["eventDescription"] = _maybe(
        draw, d.get("eventDescription"), st.lists(st.fixed_dictionaries({"latestDescription": TEXT}), max_size=3)
    )
    d["eventRegion"] = _maybe(draw, d.get("eventRegion"), TEXT, 5)
    meta = d.setdefault("eventMetadata", {})
    meta["userName"] = _maybe(draw, meta.get("userName"), NAMES)  # a forged owner: IAM is asked anyway
    _envelope(draw, event)
    return draw(mutated(event))


@st.composite
def cloudtrail_events(draw: Any, p: Population) -> Any:
    event = load_event("cloudtrail-create-access-key.json")
    wild = draw(st.booleans())
    d = event["detail"]
    key = d["responseElements"]["accessKey"]
    key["accessKeyId"] = draw(key_ids(p) if wild else st.sampled_from(p.all_keys + list(EXAMPLE_KEYS)))
    key["userName"] = draw(st.one_of(NAMES, st.none())) if wild else _owner_or_other(draw, p, key["accessKeyId"])
    if not wild:
        d["requestParameters"] = {"userName": key["userName"]}
        d["recipientAccountId"] = _maybe(draw, d["recipientAccountId"], st.just(OTHER_ACCOUNT), 6)
        d["userAgent"] = _maybe(draw, d["userAgent"], TEXT)
        d["sourceIPAddress"] = _maybe(draw, d["sourceIPAddress"], TEXT)
        d["userIdentity"]["arn"] = _maybe(draw, d["userIdentity"]["arn"], TEXT)
        return event
    d["requestParameters"] = _maybe(
        draw, d["requestParameters"], st.one_of(st.fixed_dictionaries({"userName": NAMES}), JUNK)
    )
    identity = d["userIdentity"]
    identity["type"] = _maybe(
        draw, identity["type"], st.one_of(st.sampled_from(["IAMUser", "Root", "AssumedRole"]), TEXT)
    )
    identity["userName"] = _maybe(draw, identity["userName"], NAMES)
    identity["arn"] = _maybe(draw, identity["arn"], TEXT)
    d["eventName"] = _maybe(
        draw, d["eventName"], st.sampled_from(["CreateAccessKey", "createaccesskey", "UpdateAccessKey"]), 8
    )
    d["errorCode"] = _maybe(draw, None, st.one_of(st.sampled_from(["AccessDenied", ""]), JUNK), 8)
    d["recipientAccountId"] = _maybe(draw, d["recipientAccountId"], ACCOUNTS, 4)
    d["eventID"] = _maybe(draw, d["eventID"], TEXT, 4)
    d["userAgent"] = _maybe(draw, d["userAgent"], TEXT)
    d["sourceIPAddress"] = _maybe(draw, d["sourceIPAddress"], TEXT)
    _envelope(draw, event)
    return draw(mutated(event))


EVENTS = {
    "guardduty": guardduty_events,
    "attack_sequence": attack_sequence_events,
    "health": health_events,
    "cloudtrail": cloudtrail_events,
}
MODES = st.sampled_from(["enforce", "enforce", "enforce", "dry-run"])


# ------------------------------------------------------------------------------------------- invariants


def _dig(node: Any, *path: str) -> Any:
    for part in path:
        if not isinstance(node, Mapping):
            return None
        node = node.get(part)
    return node


def named_keys(trigger: str, event: Any) -> set[str]:
    """The key ids the event names, where its trigger's extractor reads them."""
    if trigger == "guardduty":
        values = [_dig(event, "detail", "resource", "accessKeyDetails", "accessKeyId")]
    elif trigger == "attack_sequence":  # the actors of this account only: another account's are never acted on
        values = [_dig(u, "credentialUid") for u in _actor_users(event)]
    elif trigger == "cloudtrail":
        values = [_dig(event, "detail", "responseElements", "accessKey", "accessKeyId")]
    else:
        entities = _dig(event, "detail", "affectedEntities")
        values = (
            [e.get("entityValue") for e in entities if isinstance(e, Mapping)] if isinstance(entities, list) else []
        )
    return {v for v in values if isinstance(v, str)}


def _actor_users(event: Any) -> list[Any]:
    """An attack sequence's actors' users whose activity was in this account (or whose account is not said)."""
    actors = _dig(event, "detail", "service", "detection", "sequence", "actors")
    users = [_dig(a, "user") for a in actors] if isinstance(actors, list) else []
    return [u for u in users if isinstance(u, Mapping) and _dig(u, "account", "uid") in (None, ACCOUNT)]


def permitted(trigger: str, event: Any, before: dict[str, Any]) -> set[str]:
    """Principals a response to this event may change: the IAM owner of each named long-term key; for a
    GuardDuty finding on credentials IAM cannot trace (session keys, roles), the principal it names."""
    keys = named_keys(trigger, event)
    owners = {p for p, s in before.items() if p.startswith("user/") and keys & set(s.get("keys", {}))}
    if trigger == "guardduty":
        details = _dig(event, "detail", "resource", "accessKeyDetails")
        name, kind = _dig(details, "userName"), _dig(details, "userType")
        key = _dig(details, "accessKeyId")
        if isinstance(name, str | int | float) and not isinstance(name, bool):
            name = str(name)
            if kind == "AssumedRole":
                owners.add(f"role/{name}")
            elif kind == "IAMUser" and isinstance(key, str) and key.startswith("ASIA"):
                owners.add(f"user/{name}")
    if trigger == "attack_sequence":  # as a GuardDuty finding on each actor's credential
        for user in _actor_users(event):
            name, kind, key = _dig(user, "name"), _dig(user, "type"), _dig(user, "credentialUid")
            if isinstance(name, str) and kind == "AssumedRole":
                owners.add(f"role/{name}")
            elif isinstance(name, str) and kind == "IAMUser" and isinstance(key, str) and key.startswith("ASIA"):
                owners.add(f"user/{name}")
    return owners


def never_changed(trigger: str) -> set[str]:
    out = {f"user/{PROTECTED_USER}", f"role/{PROTECTED_ROLE}", f"role/{SERVICE_LINKED}"}
    out |= {f"role/{r}" for r in OWN_ROLES}
    if trigger == "cloudtrail":
        out.add(f"user/{EXEMPT_USER}")
    return out


def check(p: Population, trigger: str, event: Any, mode: str) -> None:
    counts = EXAMPLES.setdefault(trigger, Counter())
    counts["examples"] += 1
    before = world.iam_state()
    assert before == p.baseline, "the account was not put back after the previous example"
    sent = copy.deepcopy(event)
    inv = world.invoke(p.env, trigger, sent, settings=p.settings(mode))
    after = world.iam_state()
    diff = world.changes(before, after)
    try:
        # 1. only domain errors escape
        assert inv.error is None or isinstance(inv.error, KeyguardError), repr(inv.error)
        counts["malformed"] += isinstance(inv.error, MalformedEvent)
        counts["failed"] += isinstance(inv.error, ResponseFailed)
        counts["acted"] += bool(diff)
        # 2. dry-run changes nothing
        if mode == "dry-run":
            assert not diff, diff
        # 3. only named keys change, and only to Inactive; none appears or disappears
        named = named_keys(trigger, event)
        for principal, d in diff.items():
            assert "exists" not in d, (principal, d)
            for key_id, (old, new) in d.get("keys", {}).items():
                assert key_id in named, f"key {key_id} changed but the event names {named}"
                assert (old, new) == ("Active", "Inactive"), (key_id, old, new)
        # 4. only the verified owner (or the named principal where IAM cannot verify one) changes
        allowed = permitted(trigger, event, before)
        assert set(diff) <= allowed, f"changed {set(diff) - allowed}; permitted {allowed}"
        # 5. protected, own, service-linked (and, for new keys, exempt) principals never change, except that a
        # new key someone else made for a protected user is deactivated (the key only: no policy, no tag)
        for principal in set(diff) & never_changed(trigger):
            only_the_new_key = trigger == "cloudtrail" and principal == f"user/{PROTECTED_USER}"
            assert only_the_new_key and set(diff[principal]) == {"keys"}, (principal, diff[principal])
        # 6. nothing silent: each incident was announced (and handed off), whatever the event carried
        if isinstance(inv.error, ResponseFailed):
            assert "notification" not in str(inv.error), f"not announced: {str(inv.error)[:300]}"
            assert "investigation" not in str(inv.error), f"not handed off: {str(inv.error)[:300]}"
        if inv.result is not None:
            for r in inv.result["responses"]:
                assert r["notification"] in ("sent", "no topic") or r["notification"].startswith("sent"), r
    finally:
        world.restore(p.env.clients.iam, before, after)


@pytest.mark.parametrize("trigger", sorted(EVENTS))
def test_hostile_events_keep_the_invariants(population: Population, trigger: str) -> None:
    def run(data: Any) -> None:
        event = data.draw(EVENTS[trigger](population), label="event")
        mode = data.draw(MODES, label="mode")
        check(population, trigger, event, mode)

    # one name per trigger: hypothesis keys its example database (and replays) on it
    run.__name__ = run.__qualname__ = f"hostile_{trigger}_events"
    given(data=st.data())(run)()
    counts = EXAMPLES[trigger]
    # the strategies reach both sides: events rejected as malformed, and events acted on
    assert counts["malformed"] > 0 and counts["acted"] > 0, dict(counts)


# ------------------------------------------------------------------------------------------- pinned cases


def test_world_state_matches_the_api(population: Population) -> None:
    """iam_state reads the emulator's backend; it must show what the IAM API shows."""
    assert world.iam_state() == world.iam_state_via_api(population.env.clients.iam)


def test_attacker_sized_fields_are_still_announced(population: Population) -> None:
    """A leaked key's user agent and API name are the attacker's to choose; GuardDuty's title and the
    finding text carry them on. Each is capped at 2,048 characters, but the notification repeats the
    facts in 7 protocol copies with JSON escaping: it must still fit SNS's 256 KB."""
    event = load_event("guardduty-iam-user.json")
    alice = population.keys["alice"][0]
    event["detail"]["resource"]["accessKeyDetails"]["accessKeyId"] = alice
    big = "\u00e9" * 2048
    call = event["detail"]["service"]["action"]["awsApiCallAction"]
    call["userAgent"] = call["api"] = big
    event["detail"]["title"] = event["detail"]["description"] = big
    check(population, "guardduty", event, "enforce")


def test_non_object_events_raise_malformed(population: Population) -> None:
    for trigger in EVENTS:
        for event in (None, [], "x", 0, {"source": "aws.guardduty"}, {"detail": []}):
            inv = world.invoke(population.env, trigger, event, settings=population.settings("enforce"))
            assert isinstance(inv.error, MalformedEvent), (trigger, event, inv.error)
    assert world.iam_state() == population.baseline
