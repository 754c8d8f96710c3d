"""A peer side by side: Cloud Custodian (c7n) on the same GuardDuty finding, in the same kind of emulated
account, next to keyguard.

Custodian lives in its own venv, .bench/c7n-venv (c7n and moto, pinned below), which this script creates
when asked: `python benchmarks/custodian.py --install` (or `benchmarks/bench.py --with-custodian`; ~20 s
once). Without it the section says how and is skipped.

For each policy variant (custodian_child.py, one fresh process each, so the first event is a cold
container's): a `guard-duty` mode policy on `iam-user`, run as Custodian's Lambda runs it
(c7n.handler.dispatch_event with config.json), against moto seeded by keyguard.local.emulator.seed (alice
with the named key and a second key, a bystander). Reported: calls in order, calls before the first
containment call, what happened to each key and policy, the error if any, first-event and warm times.
Cold import: c7n.handler (what Custodian's generated handler imports), in fresh processes, next to keyguard's
GuardDuty handler in .bench/lambda-venv (cold_start.py).

Usage: python benchmarks/custodian.py [--install] [--runs N] [--json]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import time
import venv
from pathlib import Path
from typing import Any

import cold_start
import common

ROOT = common.ROOT
C7N_VENV = ROOT / ".bench" / "c7n-venv"
C7N_PY = C7N_VENV / "bin" / "python"
STAMP = C7N_VENV / "spec.sha256"
SPEC = ["c7n==0.9.53", "moto==5.2.1"]  # moto as in pyproject.toml's dev extra
CHILD = Path(__file__).resolve().parent / "custodian_child.py"
VARIANTS = ["remove-keys", "remove-keys-disable", "set-policy-deny-all", "remove-keys-disable-repaired"]
C7N_COLD = (
    "import sys, time\n"
    "t = time.perf_counter()\n"
    "from c7n import handler\n"
    "a = time.perf_counter() - t\n"
    "from c7n.resources import load_resources\n"
    "load_resources(('aws.iam-user',))\n"
    "print(a, time.perf_counter() - t)\n"
)
HOW = "python benchmarks/bench.py --with-custodian  (creates .bench/c7n-venv: pip install " + " ".join(SPEC) + ")"


def _spec_hash() -> str:
    return hashlib.sha256((" ".join(SPEC) + sys.version).encode()).hexdigest()


def venv_ready() -> bool:
    return C7N_PY.exists() and STAMP.exists() and STAMP.read_text().strip() == _spec_hash()


def install(log: Any) -> float:
    t = time.perf_counter()
    log(f"setup: building {C7N_VENV.relative_to(ROOT)} ({' '.join(SPEC)}) with {sys.executable} ...")
    venv.EnvBuilder(clear=True, with_pip=True).create(C7N_VENV)
    proc = subprocess.run(
        [str(C7N_PY), "-m", "pip", "install", "-q", "--disable-pip-version-check", *SPEC],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        lines = [ln for ln in (proc.stdout + proc.stderr).splitlines() if "WARNING: Location" not in ln]
        raise RuntimeError(f"pip install failed: {(lines or ['no output'])[-1].strip()}")
    STAMP.write_text(_spec_hash() + "\n")
    elapsed = time.perf_counter() - t
    log(f"setup: built in {elapsed:.1f} s")
    return elapsed


def cold_imports(runs: int) -> dict[str, Any]:
    """Fresh processes, interleaved (c7n, keyguard, boto3 alone, c7n, ...) so that load on the machine
    hits all three alike; the first round only warms the .pyc caches."""
    env = cold_start.child_env()
    c7n_env = {k: v for k, v in env.items() if k != "PYTHONPATH"}
    commands = {
        "c7n.handler": ([str(C7N_PY), "-c", C7N_COLD], c7n_env),
        "keyguard handlers.guardduty": (
            [str(cold_start.VENV_PY), "-c", cold_start.TIMER, "", "handlers.guardduty"],
            env,
        ),
        "boto3 alone": ([str(C7N_PY), "-c", cold_start.TIMER, "", "boto3"], c7n_env),
    }
    samples: dict[str, list[float]] = {"c7n.handler + load_resources(iam-user)": []}
    samples |= {name: [] for name in commands}
    for i in range(runs + 1):
        for name, (cmd, e) in commands.items():
            proc = subprocess.run(cmd, capture_output=True, text=True, env=e)
            if proc.returncode != 0:
                return {name: {"error": (proc.stderr.strip().splitlines() or ["failed"])[-1]}}
            values = [float(x) for x in proc.stdout.split()]
            if i == 0:
                continue
            samples[name].append(values[0])
            if name == "c7n.handler":
                samples["c7n.handler + load_resources(iam-user)"].append(values[1])
    return {
        name: {"median": statistics.median(v), "spread": max(v) - min(v), "samples": v} for name, v in samples.items()
    }


def keyguard_same_finding(warm: int = 20) -> dict[str, Any]:
    """keyguard's GuardDuty handler on the same finding in the same kind of account, for the table."""
    from calllog import CallRecorder, first_containment
    from keyguard.local import emulator

    recorder = CallRecorder().install()
    with common.account() as env:
        seeded = emulator.seed(env.clients.iam, common.load_event("guardduty-iam-user.json"))
        (rule,) = emulator.route(seeded.event, common.rules())
        handler = common.Handler(env, rule)
        handler.fn.runtime.reset()  # as in a new container: settings and clients made on the first event
        before = _state(env, seeded)
        recorder.clear()
        t0 = time.perf_counter()
        result, error = handler(seeded.event)
        elapsed = time.perf_counter() - t0
        calls = list(recorder.calls)
        first = first_containment(calls)
        after = _state(env, seeded)
        times, until = [], []
        for n in range(warm):
            recorder.clear()
            t = time.perf_counter()
            handler(common.guardduty_variant(seeded.event, n))
            times.append(time.perf_counter() - t)
            i = first_containment(recorder.calls)
            until.append(recorder.calls[i].ended - t)
    return {
        "named_key": seeded.replaced["AKIAIOSFODNN7EXAMPLE"],
        "before": before,
        "after": after,
        "outcome": ",".join(r["outcome"] for r in (result or {}).get("responses", [])),
        "first": {
            "error": error,
            "s": elapsed,
            "calls": [f"{c.service}:{c.name}" for c in calls],
            "before_containment": first,
            "until_containment_s": calls[first].ended - t0 if first is not None else None,
        },
        "warm": {
            "n": warm,
            "median_ms": statistics.median(times) * 1000,
            "until_containment_ms": statistics.median(until) * 1000,
        },
    }


def _state(env: Any, seeded: Any) -> dict[str, Any]:
    iam = env.clients.iam
    out = {}
    for user, keys in seeded.users.items():
        listed = {k["AccessKeyId"]: k["Status"] for k in iam.list_access_keys(UserName=user)["AccessKeyMetadata"]}
        out[user] = {
            "keys": {k: listed.get(k, "deleted") for k in keys},
            "inline": iam.list_user_policies(UserName=user)["PolicyNames"],
            "attached": [p["PolicyName"] for p in iam.list_attached_user_policies(UserName=user)["AttachedPolicies"]],
        }
    return out


def touched(before: dict[str, Any], after: dict[str, Any], named: str) -> dict[str, str]:
    """What became of the named key, the owner's other key, the bystander's key, and the owner's policies."""
    alice_b, alice_a = before["alice"], after["alice"]
    other = next(k for k in alice_b["keys"] if k != named)
    (bystander,) = before["bystander-dana"]["keys"]
    policies = sorted(set(alice_a["inline"] + alice_a["attached"]) - set(alice_b["inline"] + alice_b["attached"]))
    return {
        "named_key": f"{alice_b['keys'][named]} -> {alice_a['keys'][named]}",
        "other_key": f"{alice_b['keys'][other]} -> {alice_a['keys'][other]}",
        "bystander_key": (
            f"{before['bystander-dana']['keys'][bystander]} -> {after['bystander-dana']['keys'][bystander]}"
        ),
        "owner_policies_added": ", ".join(policies) or "none",
    }


def measure(runs: int, do_install: bool, log: Any) -> dict[str, Any]:
    setup_s = None
    if not venv_ready():
        if not do_install:
            return {"skipped": f"Cloud Custodian is not installed. To include it: {HOW}"}
        setup_s = install(log)
    out: dict[str, Any] = {"setup_s": setup_s, "spec": SPEC, "variants": {}}
    out["keyguard"] = kg = keyguard_same_finding()
    kg["touched"] = touched(kg["before"], kg["after"], kg["named_key"])
    for variant in VARIANTS:
        proc = subprocess.run([str(C7N_PY), str(CHILD), variant], capture_output=True, text=True, env=_child_env())
        if proc.returncode != 0 or not proc.stdout.strip():
            out["variants"][variant] = {"error": (proc.stderr.strip().splitlines() or ["failed"])[-1]}
            continue
        r = json.loads(proc.stdout)
        r["touched"] = touched(r["before"], r["after"], r["named_key"])
        out["variants"][variant] = r
        out["c7n_version"] = r.get("c7n_version")
    cold_start.ensure_venv(log)
    out["cold"] = cold = cold_imports(runs)
    kg_cold = cold.get("keyguard handlers.guardduty", {}).get("median")
    c7n_ready = cold.get("c7n.handler + load_resources(iam-user)", {}).get("median")
    floor = cold.get("boto3 alone", {}).get("median")
    if kg_cold and c7n_ready and floor is not None:
        out["cold_ratio"] = kg_cold / c7n_ready
        out["cold_ratio_above_boto3"] = (kg_cold - floor) / (c7n_ready - floor)
    # A cold container, from the handler import to the first containment call landing: the import (fresh
    # processes, medians) plus the first event until contained (its clients, Custodian's setup, the calls).
    c7n_import = cold.get("c7n.handler", {}).get("median")
    first = kg["first"].get("until_containment_s")
    if kg_cold and first is not None:
        out["cold_to_containment_s"] = {"keyguard": kg_cold + first}
        for name, v in out["variants"].items():
            until = v.get("cold", {}).get("until_containment_s")
            if c7n_import and until is not None:
                out["cold_to_containment_s"][f"c7n {name}"] = c7n_import + until
    return out


def _child_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PYTHON", "KEYGUARD_", "POWERTOOLS_"))}


def report(r: dict[str, Any]) -> None:
    print("\npeer: Cloud Custodian, guard-duty mode on iam-user, the same finding (guardduty-iam-user.json)")
    if "skipped" in r:
        print(f"  skipped: {r['skipped']}")
        return
    print(f"  c7n {r.get('c7n_version')} in .bench/c7n-venv; account seeded as keyguard's: alice (named key + a second")
    print("  key), bystander-dana. First event = a cold container's first event (includes Custodian's setup).")
    rows = [("keyguard", r["keyguard"]["first"], r["keyguard"].get("warm"), r["keyguard"]["touched"])]
    rows += [
        (f"c7n {name}", v.get("cold", {"error": v.get("error")}), v.get("warm"), v.get("touched", {}))
        for name, v in r["variants"].items()
    ]
    for name, first, warm, t in rows:
        print(f"  {name}")
        print(f"    result     : {first.get('error') or 'ok'}")
        if t:
            print(
                f"    keys       : named {t['named_key']}; owner's other key {t['other_key']};"
                f" bystander {t['bystander_key']}; added to owner: {t['owner_policies_added']}"
            )
        if first.get("calls") is not None:
            before = first.get("before_containment")
            print(f"    calls      : {' > '.join(first['calls'])}")
            until = first.get("until_containment_s")
            until_text = f"{until * 1000:.1f} ms" if until is not None else "never"
            print(
                f"    first event: {first['s'] * 1000:.1f} ms; calls before containment: {before};"
                f" contained after {until_text}"
            )
        if warm:
            u = warm.get("until_containment_ms")
            until_text = f"{u:.1f} ms" if u is not None else "never"
            print(f"    warm event : median {warm['median_ms']:.1f} ms; contained after {until_text}")
    cold = r.get("cold", {})
    print("  cold import, fresh processes, median s (spread):")
    for name, c in cold.items():
        if "median" in c:
            print(f"    {name:<42} {c['median']:.3f} ({c['spread']:.3f})")
        else:
            print(f"    {name:<42} ERROR {c.get('error')}")
    if "cold_ratio" in r:
        print(
            f"  keyguard / Custodian cold import: {r['cold_ratio']:.2f} (target <= 0.5);"
            f" above the shared boto3 floor: {r['cold_ratio_above_boto3']:.2f}"
        )
    _print_cold_to_containment(r)


def _print_cold_to_containment(r: dict[str, Any]) -> None:
    """Import + first event until contained, for keyguard and each Custodian variant that contained."""
    cold = r.get("cold_to_containment_s")
    if not cold or "keyguard" not in cold:
        return
    kg = cold["keyguard"]
    parts = [f"keyguard {kg:.3f} s"]
    parts += [f"{name} {t:.3f} s ({kg / t:.2f}x)" for name, t in cold.items() if name != "keyguard"]
    print(f"  cold container, import + first event until contained: {'; '.join(parts)}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--install", action="store_true", help=f"create {C7N_VENV.relative_to(ROOT)} if missing")
    parser.add_argument("--runs", type=int, default=9, help="fresh processes for the cold import")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    common.emit(measure(args.runs, args.install, log), args.json, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
