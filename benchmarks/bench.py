"""`make bench`: every benchmark section, then one compact report.

Sections (each is also a script of its own, with a longer report):
  cold    cold_start.py  handler import in fresh processes, in a venv holding only what the function ships
  calls   calls.py       ordered AWS calls per trigger; how many come before the first containment call
  warm    warm.py        warm handler vs bare boto3 calls doing the same containment + notification (moto)
  scale   scale.py       a Health event naming 50 keys; 1,000 GuardDuty findings (events/s); memory
  peer    custodian.py   Cloud Custodian on the same finding (needs --with-custodian once: its own venv)
  org     organization.py  1,000 GuardDuty findings over 50 member accounts (organization mode): events/s,
                         AssumeRole calls, calls before the deny cold/cached, when each deny lands
  burst   burst.py       opt-in (--sections ...,burst): run as its own script, its report shown as printed

Runs from a fresh clone: it uses .venv for keyguard and moto (running `make .venv/.installed` if needed),
builds .bench/lambda-venv for the cold start and, with --with-custodian, .bench/c7n-venv.

Usage: python benchmarks/bench.py [--sections cold,calls,...] [--with-custodian] [--quick] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
VENV_PY = ROOT / ".venv" / "bin" / "python"
SECTIONS = ("cold", "calls", "warm", "scale", "peer", "org")
EXTRA_SECTIONS = ("burst",)  # not run unless named


def ensure_interpreter() -> None:
    """Re-run under .venv's Python when this one lacks keyguard's dependencies (a fresh clone's python3)."""
    try:
        import aws_lambda_powertools  # noqa: F401
        import moto  # noqa: F401
        import yaml  # noqa: F401

        return
    except ImportError:
        pass
    if Path(sys.prefix).resolve() == VENV_PY.parent.parent.resolve():
        sys.exit("bench: .venv lacks moto, PyYAML or Powertools; run `make .venv/.installed`")
    if not VENV_PY.exists():
        print("bench: setting up .venv (make .venv/.installed) ...", file=sys.stderr, flush=True)
        subprocess.run(["make", "-C", str(ROOT), ".venv/.installed"], check=True)
    os.execv(str(VENV_PY), [str(VENV_PY), *sys.argv])  # noqa: S606 - this script again, under .venv


def run_section(name: str, args: argparse.Namespace) -> dict[str, Any]:
    if name == "burst":  # another script's own report, shown as it prints it
        t = time.perf_counter()
        proc = subprocess.run([sys.executable, str(HERE / "burst.py")], stdout=subprocess.PIPE, text=True)
        out = {"text": proc.stdout.strip(), "elapsed_s": time.perf_counter() - t}
        return out if proc.returncode == 0 else out | {"error": f"burst.py exited {proc.returncode}"}
    script, extra = {
        "cold": ("cold_start.py", ["--runs", str(args.runs)]),
        "calls": ("calls.py", []),
        "warm": ("warm.py", ["--iterations", str(100 if args.quick else 200)]),
        "scale": ("scale.py", ["--events", str(300 if args.quick else 1000)]),
        "peer": ("custodian.py", ["--runs", str(args.runs)] + (["--install"] if args.with_custodian else [])),
        "org": ("organization.py", ["--events", str(300 if args.quick else 1000)]),  # issue 11
    }[name]
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, str(HERE / script), "--json", *extra], stdout=subprocess.PIPE, text=True)
    elapsed = time.perf_counter() - t
    if proc.returncode != 0:
        return {"error": f"{script} exited {proc.returncode}", "elapsed_s": elapsed}
    try:
        result = json.loads(proc.stdout)
    except json.JSONDecodeError:
        return {"error": f"{script} printed no JSON", "elapsed_s": elapsed}
    result["elapsed_s"] = elapsed
    return result


def report_cold(r: dict[str, Any]) -> None:
    print(
        f"cold start: handler import, {r['runs']} fresh processes, shipped packages only (target <= {r['target_s']} s)"
    )
    floor = r.get("floor", {}).get("boto3", {}).get("median")
    for name, h in r["handlers"].items():
        if "error" in h:
            print(f"  {name:<28} ERROR {h['error']}")
            continue
        above = f"  (+{h['median'] - floor:.3f} on top of boto3 alone {floor:.3f})" if floor else ""
        verdict = "PASS" if h["pass"] else "FAIL"
        print(f"  {name:<28} median {h['median']:.3f} s  spread {h['spread']:.3f}  {verdict}{above}")
    deferred = r["deferred_until_after_containment"]["after_handler"]
    mods = " + ".join(r["deferred_until_after_containment"]["modules"])
    d = next(iter(deferred.values()), {})
    if "median" in d:
        print(f"  imported only after containment ({mods}): {d['median']:.3f} s")
    clients = r.get("first_event_clients", {}).get("handlers.guardduty", {})
    iam, after = clients.get("iam_before_containment", {}), clients.get("sns_dynamodb_after", {})
    if "median" in iam:
        print(
            f"  first event, before its first call: boto3 session + IAM client {iam['median']:.3f} s"
            f" (after containment: SNS + DynamoDB clients {after.get('median', float('nan')):.3f} s)"
        )
    top = r.get("importtime", {}).get("handlers.guardduty", [])[:4]
    if top:
        print(
            "  biggest imports of handlers.guardduty: "
            + ", ".join(f"{t['name']} {t['cumulative_ms']:.0f} ms" for t in top)
        )


def report_calls(r: dict[str, Any]) -> None:
    print("calls before containment (target: GuardDuty and its attack sequences naming the owner 0; Health 1;")
    print("  CreateAccessKey 1)")
    for row in r["rows"]:
        if row.get("function") is None:
            print(f"  {row['event']:<46} no rule matches: not invoked")
            continue
        before = row.get("before_containment")
        target = row.get("target")
        head = f"{before}/{target}" if target is not None else ("-" if before is None else str(before))
        print(f"  {row['event']:<46} {head:>4}  {row.get('verdict', ''):<26} {' > '.join(row['calls'])}")
        if row.get("ahead_of_last_deny"):
            ahead = ", ".join(row["ahead_of_last_deny"])
            print(f"  {'':<46}       ahead of the last key's deny (not lookups/denies): {ahead}")
    print(f"  all targets: {'PASS' if r['all_pass'] else 'FAIL'}")


def report_warm(r: dict[str, Any]) -> None:
    c = r["contenders"]
    print(f"warm overhead: GuardDuty, one warm container, {r['iterations']} new findings, median ms (moto in-process)")
    for name in ("handler", "bare", "same-calls"):
        x = c[name]
        print(
            f"  {name:<11} {x['total']['median_ms']:6.2f}  deactivated at {x['until_deactivated']['median_ms']:5.2f}"
            f"  denied at {x['until_denied']['median_ms']:5.2f}  notified at {x['until_notified']['median_ms']:6.2f}"
            f"  outside calls {x['outside_calls']['median_ms']:5.2f}"
            f"  building requests {x['building_requests']['median_ms']:5.2f}   {' > '.join(x['calls'])}"
        )
    verdict = "PASS" if r["pass"] else "FAIL"
    print(
        f"  handler/bare {r['ratio_vs_bare']:.2f}x (target <= {r['target_ratio']}x: {verdict});"
        f" handler/same-calls {r['ratio_vs_same_calls']:.2f}x;"
        f" until deactivated {r['ratio_until_deactivated']:.2f}x; until denied {r['ratio_until_denied']:.2f}x"
    )
    model = ", ".join(f"+{k} ms/call {v:.2f}x" for k, v in r["ratio_model"].items() if k != "0")
    print(f"  extra calls (all after the deny): {', '.join(r['extra_calls'])}; handler/bare modelled at {model}")


def report_scale(r: dict[str, Any]) -> None:
    h, g = r["health"], r["guardduty_loop"]
    ahead = ", ".join(f"{k} x{v}" for k, v in h["non_containment_calls_ahead_of_last_deny"].items()) or "nothing else"
    print(
        f"scale: Health naming {h['keys']} keys: {h['total_s'] * 1000:.0f} ms ({h['per_key_ms']:.1f} ms/key),"
        f" {h['calls']} calls,"
        f" {h['iam_state']['named_inactive']}/{h['keys']} keys inactive, other keys untouched"
        f" {h['iam_state']['other_keys_active']}/{h['iam_state']['other_keys']}"
    )
    print(
        f"  first deny at {h['first_deny_ms']:.0f} ms, last deny at {h['last_deny_ms']:.0f} ms"
        f" (ahead of it: {ahead}), first notification at {h['first_notification_ms']:.0f} ms"
    )
    lat = g["latency"]
    print(
        f"  {g['events']} GuardDuty findings: {g['events_per_s']:.1f} events/s, median {lat['median_ms']:.1f} ms,"
        f" p90 {lat['p90_ms']:.1f} ms, failures {g['failures']}"
    )
    print(
        f"  memory: peak RSS {g['maxrss_before_mib']:.0f} -> {g['maxrss_after_mib']:.0f} MiB over the loop"
        " (moto included);"
        f" kept per event by keyguard+Powertools {g['retained_own_bytes_per_event'] / 1024:.1f} KiB"
        f" (Notifier.sent: {g['notifier_sent_kept']} messages, {g['notifier_sent_bytes'] / 2**20:.1f} MiB)"
    )


def report_peer(r: dict[str, Any]) -> None:
    if "skipped" in r:
        print(f"peer: {r['skipped']}")
        return
    print(f"peer: Cloud Custodian {r.get('c7n_version')} guard-duty mode, iam-user, the same finding and account")
    rows = [("keyguard", r["keyguard"]["first"], r["keyguard"]["warm"], r["keyguard"]["touched"])]
    rows += [
        (f"c7n {n}", v.get("cold", {}), v.get("warm") or {}, v.get("touched", {})) for n, v in r["variants"].items()
    ]
    print(f"  {'':<34} {'before':>6} {'contained (1st/warm ms)':>24}  named key -> / other key -> / added   result")
    for name, first, warm, t in rows:
        u1, u2 = first.get("until_containment_s"), warm.get("until_containment_ms")
        when = f"{u1 * 1000:.0f} / {u2:.1f}" if u1 is not None and u2 is not None else "never"
        before = first.get("before_containment")
        named, other = t.get("named_key", "?").split()[-1], t.get("other_key", "?").split()[-1]
        keys = f"{named} / {other} / {t.get('owner_policies_added')}"
        result = first.get("error") or "ok"
        print(f"  {name:<34} {before if before is not None else '-':>6} {when:>24}  {keys:<40} {result[:70]}")
    cold = r.get("cold", {})
    if "cold_ratio" in r:
        parts = ", ".join(f"{n} {c['median']:.3f}" for n, c in cold.items() if "median" in c)
        print(f"  cold import medians (s): {parts}")
        print(
            f"  keyguard/Custodian cold import {r['cold_ratio']:.2f} (target <= 0.5);"
            f" above the shared boto3 floor {r['cold_ratio_above_boto3']:.2f}"
        )
    cold_to = r.get("cold_to_containment_s", {})
    if "keyguard" in cold_to:
        kg = cold_to["keyguard"]
        others = "; ".join(f"{n} {t:.3f} s ({kg / t:.2f}x)" for n, t in cold_to.items() if n != "keyguard")
        print(
            f"  cold, import + first event until contained: keyguard {kg:.3f} s; {others or 'no c7n variant contained'}"
        )


def report_burst(r: dict[str, Any]) -> None:
    print("burst (benchmarks/burst.py):")
    for line in r["text"].splitlines():
        print(f"  {line}")


def report_org(r: dict[str, Any]) -> None:  # issue 11
    import organization

    organization.report(r)


REPORTS = {
    "org": report_org,
    "burst": report_burst,
    "cold": report_cold,
    "calls": report_calls,
    "warm": report_warm,
    "scale": report_scale,
    "peer": report_peer,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sections",
        default=",".join(SECTIONS),
        help=f"comma-separated, from {', '.join(SECTIONS + EXTRA_SECTIONS)} (default: all but burst)",
    )
    parser.add_argument("--with-custodian", action="store_true", help="create .bench/c7n-venv if missing (peer)")
    parser.add_argument("--quick", action="store_true", help="fewer iterations (300 events, 100 warm)")
    parser.add_argument("--runs", type=int, default=9, help="fresh processes per cold import (>= 7)")
    parser.add_argument("--json", action="store_true", help="print every section's full results as JSON")
    args = parser.parse_args(argv)
    chosen = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = [s for s in chosen if s not in SECTIONS + EXTRA_SECTIONS]
    if unknown:
        parser.error(f"unknown section(s): {', '.join(unknown)}")
    ensure_interpreter()

    started = time.perf_counter()
    results: dict[str, Any] = {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
        "when": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    for name in chosen:
        print(f"bench: {name} ...", file=sys.stderr, flush=True)
        results[name] = run_section(name, args)
    results["elapsed_s"] = time.perf_counter() - started
    if args.json:
        print(json.dumps(results, indent=2, default=str))
        return 0 if all("error" not in results[n] for n in chosen) else 1
    print(
        f"\nkeyguard bench: python {results['python']}, {results['cpus']} cores,"
        f" {results['when']}, {results['elapsed_s']:.0f} s"
    )
    failed = False
    for name in chosen:
        print()
        r = results[name]
        if "error" in r:
            failed = True
            print(f"{name}: ERROR {r['error']}")
            continue
        REPORTS[name](r)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
