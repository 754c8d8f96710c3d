#!/usr/bin/env bash
# Static guarantees (issue 5): each scanner runs against the repository and prints PASS, FAIL or SKIPPED.
#
#   checkov      template.yaml: no failed check. A suppression must sit in the template as
#                Metadata: {checkov: {skip: [{id: CKV_..., comment: <why>}]}} and carry a written reason.
#   bandit       src/ at medium severity and above: no finding.
#   parliament   every IAM policy document in template.yaml (role policies, key, topic and queue policies).
#   pip-audit    src/requirements.txt (what the functions ship) against PyPI's vulnerability data.
#
# The scanners live in their own venv (.venv-scan): their pins (checkov alone pulls boto3, pydantic and more)
# must not move moto/boto3 in .venv.
#
# A check that cannot run (no network to a vulnerability service, say) is reported as SKIPPED with the
# reason, never passed silently. SKIPPED does not fail the run unless STATIC_STRICT=1; FAIL always does.
#
# Usage: scripts/static_checks.sh [checkov|bandit|parliament|pip-audit ...]   (default: all four)
set -uo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
SCAN=.venv-scan
CHECKOV_VERSION=3.3.30
BANDIT_VERSION=1.9.4
PARLIAMENT_VERSION=1.6.4
PIP_AUDIT_VERSION=2.10.1
PYYAML_VERSION=6.0.3
STAMP="$SCAN/.installed-$CHECKOV_VERSION-$BANDIT_VERSION-$PARLIAMENT_VERSION-$PIP_AUDIT_VERSION"
export PIP_DISABLE_PIP_VERSION_CHECK=1

TEMPLATE=${TEMPLATE:-template.yaml}  # another template (e.g. a proposed edit) can be checked the same way
export TEMPLATE
# issue 11: checkov and parliament scan every template (the central one and the member StackSets' in templates/)
TEMPLATES=${TEMPLATES:-"$TEMPLATE $(ls templates/*.yaml 2>/dev/null | tr '\n' ' ')"}
checks=("$@")
[ ${#checks[@]} -eq 0 ] && checks=(checkov bandit parliament pip-audit)

if [ ! -f "$STAMP" ]; then
  echo "static: installing scanners into $SCAN (once)"
  rm -rf "$SCAN"
  "$PYTHON" -m venv "$SCAN" || { echo "static: FAIL could not create $SCAN"; exit 1; }
  "$SCAN/bin/pip" install -qq --upgrade pip
  if ! "$SCAN/bin/pip" install -qq "checkov==$CHECKOV_VERSION" "bandit==$BANDIT_VERSION" \
      "parliament==$PARLIAMENT_VERSION" "pip-audit==$PIP_AUDIT_VERSION" "pyyaml==$PYYAML_VERSION"; then
    echo "static: FAIL could not install the scanners into $SCAN"
    exit 1
  fi
  touch "$STAMP"
fi

declare -A status reason
LOG=$(mktemp -d)
trap 'rm -rf "$LOG"' EXIT

run_checkov() {
  # --compact: no code blocks; every failed check is named with its resource. Skipped checks are listed
  # with their written reason (checkov prints the comment), so a suppression is never invisible.
  "$SCAN/bin/checkov" --file "$TEMPLATE" --framework cloudformation --quiet --compact \
      --output cli --skip-download >"$LOG/checkov" 2>&1
  local rc=$?
  cat "$LOG/checkov"
  local skipped
  skipped=$("$SCAN/bin/checkov" --file "$TEMPLATE" --framework cloudformation --compact --skip-download \
      --output json 2>/dev/null | "$SCAN/bin/python" -c '
import json, sys
try:
    doc = json.load(sys.stdin)
except ValueError:
    print("  could not read the JSON report of checkov")
    sys.exit(2)
docs = doc if isinstance(doc, list) else [doc]
bad = 0
if not sum(d.get("summary", {}).get("passed", 0) + d.get("summary", {}).get("failed", 0) for d in docs):
    # issue 11: a template of resource types checkov has no check for (the member forwarding rules) is
    # named as such; anything else that ran no check is a scan that did not happen.
    import os, yaml
    class L(yaml.SafeLoader):
        pass
    L.add_multi_constructor("!", lambda loader, suffix, node: None)
    types = {r.get("Type") for r in (yaml.load(open(os.environ["TEMPLATE"]), Loader=L) or {}).get("Resources", {}).values()}
    if types and types <= {"AWS::Events::Rule"}:
        print("  checkov: no check exists for %s (the only resource type here): nothing to scan" % ", ".join(sorted(types)))
        sys.exit(0)
    print("  checkov ran no check: nothing was scanned")
    sys.exit(3)
for d in docs:
    for c in d.get("results", {}).get("skipped_checks", []):
        why = (c.get("check_result") or {}).get("suppress_comment") or ""
        ok = len(why.strip()) >= 15 and "no comment" not in why.lower()
        bad += not ok
        print("  suppressed %s on %s: %s" % (c["check_id"], c["resource"], why or "NO REASON GIVEN"))
    s = d.get("summary", {})
    print("  checkov: passed %s, failed %s, suppressed %s" % (s.get("passed", 0), s.get("failed", 0), s.get("skipped", 0)))
sys.exit(1 if bad else 0)
')
  local skip_rc=$?
  echo "$skipped"
  if [ $rc -ne 0 ]; then
    status[checkov]=FAIL; reason[checkov]="failed checks (see above)"
  elif [ $skip_rc -eq 1 ]; then
    status[checkov]=FAIL; reason[checkov]="a suppression has no written reason"
  elif [ $skip_rc -ne 0 ]; then
    status[checkov]=FAIL; reason[checkov]=$(echo "$skipped" | tail -1 | sed 's/^ *//')
  else
    status[checkov]=PASS; reason[checkov]=$(echo "$skipped" | tail -1 | sed 's/^ *//')
  fi
}

run_bandit() {
  # -ll: medium severity and above. Low-severity notes (e.g. assert) are not findings here.
  "$SCAN/bin/bandit" -r src -ll --quiet --format txt >"$LOG/bandit" 2>&1
  local rc=$?
  cat "$LOG/bandit"
  local files
  files=$(find src -name '*.py' -not -path '*/__pycache__/*' | wc -l)
  if [ $rc -eq 0 ]; then
    status[bandit]=PASS; reason[bandit]="$files files under src/, no medium- or high-severity finding"
  else
    status[bandit]=FAIL; reason[bandit]="findings at medium+ severity (see above)"
  fi
}

run_parliament() {
  "$SCAN/bin/python" - <<'PY' >"$LOG/parliament" 2>&1
"""Lint every IAM policy document in template.yaml with parliament.

CloudFormation intrinsics are replaced by plausible values first (!Sub's ${AWS::AccountId} -> 123456789012,
!Ref Topic -> a topic ARN, !GetAtt X.Arn -> an ARN of X's type), so parliament can match actions to
resources. Findings at LOW severity and above fail the check; each is printed with its policy."""
import fnmatch
import json
import os
import re
import sys

from pathlib import Path

import parliament
import yaml
from parliament import analyze_policy_string, enhance_finding, override_config

ACCOUNT, REGION, PARTITION, STACK = "123456789012", "us-east-1", "aws", "keyguard"


class Loader(yaml.SafeLoader):
    pass


def _tag(loader, suffix, node):
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {"!" + suffix: value}


Loader.add_multi_constructor("!", _tag)
template = yaml.load(open(os.environ["TEMPLATE"]).read(), Loader=Loader)  # noqa: S506 - SafeLoader subclass
resources = template["Resources"]

ARN_OF = {
    "AWS::SNS::Topic": lambda lid: f"arn:{PARTITION}:sns:{REGION}:{ACCOUNT}:{STACK}-{lid}",
    "AWS::SQS::Queue": lambda lid: f"arn:{PARTITION}:sqs:{REGION}:{ACCOUNT}:{STACK}-{lid}",
    "AWS::DynamoDB::Table": lambda lid: f"arn:{PARTITION}:dynamodb:{REGION}:{ACCOUNT}:table/{STACK}-{lid}",
    "AWS::KMS::Key": lambda lid: f"arn:{PARTITION}:kms:{REGION}:{ACCOUNT}:key/00000000-0000-0000-0000-000000000000",
    "AWS::Logs::LogGroup": lambda lid: f"arn:{PARTITION}:logs:{REGION}:{ACCOUNT}:log-group:/aws/lambda/{lid}:*",
    "AWS::IAM::Role": lambda lid: f"arn:{PARTITION}:iam::{ACCOUNT}:role/{STACK}-{lid}",
    "AWS::IAM::ManagedPolicy": lambda lid: f"arn:{PARTITION}:iam::{ACCOUNT}:policy/{STACK}-{lid}",
}
PSEUDO = {"AWS::AccountId": ACCOUNT, "AWS::Region": REGION, "AWS::Partition": PARTITION, "AWS::StackName": STACK}
# Template parameters: their defaults, and plausible values for those without one (issue 11's templates).
PLAUSIBLE = {
    "OrganizationId": "o-a1b2c3d4e5",
    "CentralAccountId": "210987654321",
    "CentralBusArn": f"arn:{PARTITION}:events:{REGION}:210987654321:event-bus/{STACK}-keyguard-central",
}
PARAMS = {k: (v or {}).get("Default") for k, v in template.get("Parameters", {}).items()}
PARAMS = {k: PLAUSIBLE.get(k, v) for k, v in PARAMS.items() if PLAUSIBLE.get(k, v) not in (None, "")}


NO_VALUE = object()


def resolve(value):
    if isinstance(value, list):
        return [v for v in (resolve(v) for v in value) if v is not NO_VALUE]
    if not isinstance(value, dict):
        return value
    if len(value) == 1:
        (tag, arg), = value.items()
        if tag in ("!Ref", "Ref") and arg == "AWS::NoValue":
            return NO_VALUE
        if tag in ("!If", "Fn::If"):
            # a condition can switch a statement on: lint it as granted
            return resolve(arg[1])
        if tag in ("!Ref", "Ref"):
            if arg in PSEUDO:
                return PSEUDO[arg]
            param = template.get("Parameters", {}).get(arg)
            if param is not None and param.get("Type") == "CommaDelimitedList":  # ARNs, as its description says
                return [f"arn:{PARTITION}:iam::{ACCOUNT}:role/{STACK}-{arg}"]
            if arg in PARAMS:
                return PARAMS[arg]
            res = resources.get(arg, {})
            return ARN_OF.get(res.get("Type"), lambda lid: f"{STACK}-{lid}")(arg)
        if tag in ("!GetAtt", "Fn::GetAtt"):
            lid = arg.split(".")[0] if isinstance(arg, str) else arg[0]
            return ARN_OF[resources[lid]["Type"]](lid)
        if tag in ("!Join", "Fn::Join"):
            sep, items = arg
            return sep.join(str(v) for v in resolve(items))
        if tag in ("!Split", "Fn::Split"):
            sep, text = arg
            return resolve(text).split(sep)
        if tag in ("!Sub", "Fn::Sub"):
            text = arg if isinstance(arg, str) else arg[0]
            return re.sub(r"\$\{([^}]+)\}", lambda m: PSEUDO.get(m.group(1), PARAMS.get(m.group(1), m.group(1))), text)
    return {k: resolve(v) for k, v in value.items()}


documents = []
for lid, res in resources.items():
    props = res.get("Properties", {})
    if res["Type"] == "AWS::IAM::Role":
        for pol in props.get("Policies", []):
            documents.append((f"{lid}/{pol['PolicyName']}", "identity", pol["PolicyDocument"]))
    elif res["Type"] == "AWS::KMS::Key":
        documents.append((f"{lid} (key policy)", "resource", props["KeyPolicy"]))
    elif res["Type"] in ("AWS::SNS::TopicPolicy", "AWS::SQS::QueuePolicy"):
        documents.append((f"{lid}", "resource", props["PolicyDocument"]))
    elif res["Type"] == "AWS::IAM::ManagedPolicy":
        documents.append((f"{lid} (managed policy)", "identity", props["PolicyDocument"]))
    elif res["Type"] == "AWS::DynamoDB::Table" and "ResourcePolicy" in props:
        documents.append((f"{lid} (resource policy)", "resource", props["ResourcePolicy"]["PolicyDocument"]))
    elif res["Type"] == "AWS::IAM::Policy":  # issue 11: policies attached to roles made elsewhere
        documents.append((f"{lid}/{props['PolicyName']}", "identity", props["PolicyDocument"]))
    elif res["Type"] == "AWS::Events::EventBus" and "Policy" in props:  # issue 11: the central bus
        documents.append((f"{lid} (bus policy)", "resource", props["Policy"]))

# Findings accepted, each with its reason: (policy document glob, issue) -> why. Anything else fails the
# check. The investigation role repeats the containment actions (follow-up containment), for the same reasons,
# and so does the tamper watch (it puts an undone containment back with the same actions).
CONTAINING = ("*Role/contain", "InvestigationFunctionRole/investigate", "TamperWatchFunctionRole/recontain")
ACCEPTED = {
    (CONTAINING, "PERMISSIONS_MANAGEMENT_ACTIONS"):
        "iam:PutUserPolicy / iam:PutRolePolicy write keyguard's deny policies: they are the containment itself",
    (CONTAINING, "PRIVILEGE_ESCALATION"):
        "the same Put*Policy actions; IAM has no condition key on an inline policy's name or content, so the "
        "grant is scoped to this account's users/roles (tests/unit/test_template.py) and the code writes only "
        "Deny documents (tests/behaviour, tests/reliability)",
    (CONTAINING, "CREDENTIALS_EXPOSURE"):
        "iam:UpdateAccessKey: keyguard sets Status=Inactive only; the call returns no secret and IAM has no "
        "condition key on the status",
    (("OperatorRole/operate",), "PERMISSIONS_MANAGEMENT_ACTIONS"):
        "issue 11's optional operator role: keyguard contain writes the deny policy and keyguard release removes "
        "it (Delete*Policy); assumed only by the roles named in OperatorRoleArns, scoped to the member's users/roles",
    (("OperatorRole/operate",), "PRIVILEGE_ESCALATION"):
        "the same Put/Delete*Policy actions for contain and release; IAM has no condition key on an inline "
        "policy's name, and the role denies itself and keyguard's other roles",
    (("OperatorRole/operate",), "CREDENTIALS_EXPOSURE"):
        "iam:UpdateAccessKey: contain deactivates a key, release --reactivate reactivates one the operator names; "
        "no secret is returned",
    (("OrganizationAccessPolicy/organization",), "CREDENTIALS_EXPOSURE"):
        "sts:AssumeRole returns the member role's credentials: that is how keyguard acts in a member account; "
        "scoped to the member role's name and to this organization's accounts (aws:ResourceOrgID)",
    (("Key (key policy)", "AlarmKey (key policy)"), "PERMISSIONS_MANAGEMENT_ACTIONS"):
        "kms:* for the account root: the default key policy, without which the key cannot be administered",
    (("Key (key policy)", "AlarmKey (key policy)"), "RESOURCE_STAR"):
        'in a key policy "Resource": "*" means this key and nothing else',
}

# As parliament's CLI does: the community auditors' settings, each finding given its severity and title,
# findings below LOW dropped.
override_config(Path(parliament.__file__).parent / "community_auditors" / "config_override.yaml")
SEVERITIES = ("LOW", "MEDIUM", "HIGH", "CRITICAL")
failed = 0
for name, kind, doc in documents:
    policy = analyze_policy_string(json.dumps(resolve(doc)), include_community_auditors=True)
    findings = [f for f in map(enhance_finding, policy.findings) if f.severity in SEVERITIES]
    accepted = {f.issue: why for f in findings for (globs, issue), why in ACCEPTED.items()
                if f.issue == issue and any(fnmatch.fnmatch(name, g) for g in globs)}
    open_findings = [f for f in findings if f.issue not in accepted]
    label = "ok" if not open_findings else f"{len(open_findings)} finding(s)"
    print(f"  {name} [{kind} policy]: {label}")
    for f in findings:
        if f.issue in accepted:
            print(f"    accepted {f.severity} {f.issue}: {accepted[f.issue]}")
        else:
            failed += 1
            print(f"    {f.severity} {f.issue}: {f.title} {json.dumps(f.detail, default=str)[:300]}")
print(f"  parliament: {len(documents)} policy documents, {failed} open finding(s) at LOW or above")
sys.exit(1 if failed else 0)
PY
  local rc=$?
  cat "$LOG/parliament"
  if [ $rc -eq 0 ]; then
    status[parliament]=PASS; reason[parliament]=$(tail -1 "$LOG/parliament" | sed 's/^ *//')
  else
    status[parliament]=FAIL; reason[parliament]="findings (see above)"
  fi
}

run_pip_audit() {
  # pip-audit resolves src/requirements.txt (with its dependencies) and asks a vulnerability service about
  # each package: PyPI's JSON API (default) or OSV. A package it could not ask about is listed under
  # "Skip Reason" while pip-audit still says "No known vulnerabilities found" and exits 0: that is not a
  # pass, so it is reported as SKIPPED with the reason.
  "$SCAN/bin/pip-audit" --requirement src/requirements.txt --vulnerability-service pypi --progress-spinner off \
      --desc off >"$LOG/pip-audit" 2>&1
  local rc=$?
  cat "$LOG/pip-audit"
  local unaudited
  unaudited=$(grep -E "could not be audited|not found on PyPI" "$LOG/pip-audit" | awk '{print $1}' | sort -u | paste -sd, -)
  if [ $rc -ne 0 ] && grep -qE "^Name +Version +ID" "$LOG/pip-audit"; then
    status[pip-audit]=FAIL; reason[pip-audit]="known vulnerabilities in src/requirements.txt (see above)"
  elif [ -n "$unaudited" ]; then
    status[pip-audit]=SKIPPED
    reason[pip-audit]="the vulnerability service did not answer for: $unaudited (PyPI's JSON API is not reachable from this machine; OSV neither). Not audited."
  elif [ $rc -ne 0 ]; then
    status[pip-audit]=SKIPPED
    reason[pip-audit]="pip-audit could not run: $(grep -m1 -iE 'error' "$LOG/pip-audit" | cut -c1-160)"
  else
    local n
    n=$(grep -cvE '^\s*(#|$)' src/requirements.txt)
    status[pip-audit]=PASS; reason[pip-audit]="$n pinned requirement(s) and their dependencies: no known vulnerabilities"
  fi
}

run_each() {  # issue 11: one scanner over every template; FAIL if any template fails
  local check=$1 worst=PASS why="" t
  for t in $TEMPLATES; do
    export TEMPLATE=$t
    echo "--- $check: $t"
    "run_$check"
    [ "${status[$check]}" = FAIL ] && worst=FAIL
    why="$why${why:+; }$t: ${reason[$check]}"
  done
  status[$check]=$worst; reason[$check]=$why
}

for check in "${checks[@]}"; do
  echo "=== static: $check"
  case "$check" in
    checkov) run_each checkov ;;
    bandit) run_bandit ;;
    parliament) run_each parliament ;;
    pip-audit) run_pip_audit ;;
    *) echo "unknown check $check"; exit 2 ;;
  esac
done

echo "=== static checks"
rc=0
for check in "${checks[@]}"; do
  printf '  %-11s %-8s %s\n' "$check" "${status[$check]}" "${reason[$check]}"
  case "${status[$check]}" in
    FAIL) rc=1 ;;
    SKIPPED) [ "${STATIC_STRICT:-0}" = 1 ] && rc=1 ;;
  esac
done
exit $rc
