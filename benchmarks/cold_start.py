"""Cold import time of each keyguard Lambda handler, as a Lambda cold start pays it.

On a cold start the runtime imports the handler module before it can call ``lambda_handler``, so every
millisecond spent importing is added to the containment latency of the first leaked-key event (the
time until the key is deactivated). This script measures that import in isolation:

* a venv at .bench/lambda-venv holds only what the function ships (src/requirements.txt) plus boto3,
  which stands in for the runtime's copy; it is rebuilt when src/requirements.txt changes;
* each handler module is imported in N fresh processes with PYTHONPATH=src, bytecode caches enabled
  (one uncounted warm-up run writes them, as a deployed package would have them) and no AWS
  credentials; ``time.perf_counter()`` brackets ``importlib.import_module`` only, so interpreter
  start-up (paid by the runtime either way) is not counted;
* ``-X importtime`` shows the biggest contributors to each handler's import;
* keyguard.dedup and the Powertools idempotency utility, imported only after containment, are timed
  on top of an already imported handler to show what has been deferred off the hot path;
* boto3 alone is timed as the floor every Python responder pays, so the handler's own share shows;
* the first event of a container also creates keyguard's boto3 session and IAM client before its first
  containment call (Clients().iam), and the SNS and DynamoDB clients after it: timed on top of the
  imported handler, as the rest of the cold path before the deny;
* all of these run interleaved (one process of each per round), so load on the machine hits them alike.

Figures come from this machine's interpreter, not Lambda's python3.13 on its CPU share: compare them
with one another and against the 0.400 s target, not to the millisecond with production.

Usage: python3 benchmarks/cold_start.py [--runs N] [--json]   (from any directory)
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

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src"
REQUIREMENTS = SRC / "requirements.txt"
VENV = ROOT / ".bench" / "lambda-venv"
VENV_PY = VENV / "bin" / "python"
HASH_FILE = VENV / "requirements.sha256"
EXTRA = ["boto3"]  # provided by the Lambda runtime, not by src/requirements.txt
HANDLERS = ["handlers.guardduty", "handlers.health", "handlers.access_key_created"]
DEFERRED = ["keyguard.dedup", "aws_lambda_powertools.utilities.idempotency"]
# What any Python responder that calls AWS pays: boto3 (which imports botocore). A handler's own cost is
# its figure minus this floor.
FLOOR = ["boto3"]
TARGET_S = 0.400
# argv[1]: comma-separated modules imported first, untimed; argv[2:]: the modules timed.
TIMER = (
    "import importlib, sys, time\n"
    "for m in filter(None, sys.argv[1].split(',')): importlib.import_module(m)\n"
    "t = time.perf_counter()\n"
    "for m in sys.argv[2:]: importlib.import_module(m)\n"
    "print(time.perf_counter() - t)\n"
)


def wanted_hash() -> str:
    spec = REQUIREMENTS.read_bytes() + " ".join(EXTRA).encode() + sys.version.encode()
    return hashlib.sha256(spec).hexdigest()


def ensure_venv(log) -> float | None:
    """Build the venv unless it is up to date; return the seconds spent building, None if reused."""
    if VENV_PY.exists() and HASH_FILE.exists() and HASH_FILE.read_text().strip() == wanted_hash():
        log(f"setup: reusing {VENV.relative_to(ROOT)} (up to date with src/requirements.txt)")
        return None
    start = time.perf_counter()
    log(f"setup: building {VENV.relative_to(ROOT)} with {sys.executable} ...")
    venv.EnvBuilder(clear=True, with_pip=True).create(VENV)  # uses the running interpreter
    pip = [str(VENV_PY), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    proc = subprocess.run([*pip, "-r", str(REQUIREMENTS), *EXTRA], capture_output=True, text=True)
    output = [ln for ln in (proc.stdout + proc.stderr).splitlines() if "WARNING: Location" not in ln]
    if proc.returncode != 0:
        raise RuntimeError(f"pip install failed: {(output or ['no output'])[-1].strip()}")
    for line in filter(str.strip, output):
        log(f"  pip: {line}")
    HASH_FILE.write_text(wanted_hash() + "\n")
    elapsed = time.perf_counter() - start
    log(f"setup: built in {elapsed:.1f} s")
    return elapsed


def child_env() -> dict[str, str]:
    """Like the Lambda sandbox: no Python tweaks (bytecode writing on), no credentials, a region."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "AWS_"))}
    return env | {"PYTHONPATH": str(SRC), "AWS_DEFAULT_REGION": "us-east-1"}


def run_python(*args: str, python: Path = VENV_PY) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(python), *args], capture_output=True, text=True, env=child_env())


# argv[1]: the handler module, imported first, untimed. Then: IAM client (before containment), SNS and
# DynamoDB clients (after it), each made as keyguard makes them (keyguard.aws.Clients).
FIRST_CLIENTS = (
    "import importlib, sys, time\n"
    "importlib.import_module(sys.argv[1])\n"
    "from keyguard.aws import Clients\n"
    "t = time.perf_counter()\n"
    "c = Clients(); c.iam\n"
    "a = time.perf_counter() - t\n"
    "c.sns('arn:aws:sns:us-east-1:123456789012:keyguard'); c.get('dynamodb')\n"
    "print(a, time.perf_counter() - t - a)\n"
)


def stats(samples: list[float]) -> dict:
    out = {"median": statistics.median(samples), "min": min(samples), "max": max(samples)}
    out |= {"spread": out["max"] - out["min"], "stdev": statistics.stdev(samples) if len(samples) > 1 else 0.0}
    return out | {"samples": samples}


def interleaved(jobs: dict[str, list[str]], runs: int, python: Path = VENV_PY) -> dict[str, list[dict]]:
    """Run each job's `python ARGS` once per round, `runs` rounds after one uncounted warm-up round (it
    writes the .pyc caches); each job prints floats: stats per printed column."""
    samples: dict[str, list[list[float]]] = {name: [] for name in jobs}
    errors: dict[str, str] = {}
    for round_ in range(runs + 1):
        for name, args in jobs.items():
            if name in errors:
                continue
            proc = run_python(*args, python=python)
            if proc.returncode != 0:
                errors[name] = (proc.stderr.strip().splitlines() or ["failed"])[-1]
            elif round_:
                samples[name].append([float(x) for x in proc.stdout.split()])
    out: dict[str, list[dict]] = {}
    for name, rows in samples.items():
        if name in errors:
            out[name] = [{"error": errors[name]}]
        else:
            out[name] = [stats([row[i] for row in rows]) for i in range(len(rows[0]))]
    return out


def offenders(module: str, top: int = 10) -> list[dict]:
    """Top `top` imports by cumulative time within `module`'s import, from `-X importtime`."""
    entries = []  # (depth, name, self_us, cumulative_us), children listed before their parent
    for line in run_python("-X", "importtime", "-c", f"import {module}").stderr.splitlines():
        parts = line.removeprefix("import time:").split("|")
        if not line.startswith("import time:") or len(parts) != 3 or not parts[0].strip().isdigit():
            continue
        name = parts[2].rstrip()
        depth = (len(name) - len(name.lstrip()) - 1) // 2
        entries.append((depth, name.strip(), int(parts[0]), int(parts[1])))
    end = next((i for i, e in enumerate(entries) if e[0] == 0 and e[1] == module), None)
    if end is None:
        return []
    start = end
    while start > 0 and entries[start - 1][0] > 0:
        start -= 1
    # Top-level-ish: the handler's imports down to three levels, not deep internals, and not the
    # handler's own parent packages (imported as part of `import handlers.x`).
    parents = {module.rsplit(".", i)[0] for i in range(1, module.count(".") + 1)}
    subtree = [e for e in entries[start:end] if e[0] <= 3 and e[1] not in parents]
    subtree.sort(key=lambda e: e[3], reverse=True)
    return [{"name": n, "cumulative_ms": c / 1000, "self_ms": s / 1000} for _, n, s, c in subtree[:top]]


def print_table(title: str, rows: dict[str, dict]) -> None:
    print(f"\n{title}")
    print(f"{'module':<50} {'median':>7} {'min':>7} {'max':>7} {'spread':>7} {'stdev':>7}")
    for name, r in rows.items():
        if "error" in r:
            print(f"{name:<50} ERROR: {r['error']}")
            continue
        cols = " ".join(f"{r[k]:>7.3f}" for k in ("median", "min", "max", "spread", "stdev"))
        print(f"{name:<50} {cols}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9, help="timed processes per module (minimum 7)")
    parser.add_argument("--json", action="store_true", help="print machine-readable results")
    args = parser.parse_args()
    if args.runs < 7:
        parser.error("--runs must be at least 7")

    def log(msg: str) -> None:
        print(msg, file=sys.stderr if args.json else sys.stdout, flush=True)

    try:
        setup_s = ensure_venv(log)
    except (OSError, RuntimeError, subprocess.CalledProcessError) as exc:
        print(f"error: cannot build {VENV}: {exc}", file=sys.stderr)
        return 2

    jobs = {m: ["-c", TIMER, "", m] for m in HANDLERS}
    jobs |= {f"floor:{m}": ["-c", TIMER, "", m] for m in FLOOR}
    jobs |= {f"deferred:{m}": ["-c", TIMER, m, *DEFERRED] for m in HANDLERS}
    jobs |= {f"clients:{m}": ["-c", FIRST_CLIENTS, m] for m in HANDLERS}
    timed = interleaved(jobs, args.runs)
    handlers = {
        m: timed[m][0] | ({"pass": timed[m][0]["median"] <= TARGET_S} if "median" in timed[m][0] else {})
        for m in HANDLERS
    }
    floor = {m: timed[f"floor:{m}"][0] for m in FLOOR}
    deferred = {m: timed[f"deferred:{m}"][0] for m in HANDLERS}
    clients = {m: {"iam_before_containment": timed[f"clients:{m}"][0]} for m in HANDLERS}
    for m in HANDLERS:
        if len(timed[f"clients:{m}"]) > 1:
            clients[m]["sns_dynamodb_after"] = timed[f"clients:{m}"][1]
    importtime = {m: offenders(m) for m in HANDLERS}
    python = sys.version.split()[0]
    if args.json:
        out = {"python": python, "runs": args.runs, "setup_s": setup_s, "target_s": TARGET_S}
        out |= {"handlers": handlers, "floor": floor, "first_event_clients": clients, "importtime": importtime}
        out["deferred_until_after_containment"] = {"modules": DEFERRED, "after_handler": deferred}
        print(json.dumps(out, indent=2))
        return 0

    print(f"\ncold import, {args.runs} fresh processes each, seconds (python {python})")
    print_table("handlers (on the cold-start path)", handlers)
    for name, r in handlers.items():
        print(f"{name}: target <= {TARGET_S:.3f} s: {'PASS' if r.get('pass') else 'FAIL'}")
    print_table("the floor: what every Python responder imports to call AWS", floor)
    base = floor["boto3"].get("median")
    if base is not None:
        for name, r in handlers.items():
            if "median" in r:
                print(f"{name}: {r['median'] - base:+.3f} s on top of boto3 alone")
    print_table(f"deferred until after containment: {' + '.join(DEFERRED)}, imported after", deferred)
    print_table(
        "first event, before containment: boto3 session + IAM client (keyguard.aws.Clients().iam)",
        {m: c["iam_before_containment"] for m, c in clients.items()},
    )
    print_table(
        "first event, after containment: SNS + DynamoDB clients",
        {m: c.get("sns_dynamodb_after", {"error": "not measured"}) for m, c in clients.items()},
    )
    for name, rows in importtime.items():
        print(f"\ntop {len(rows)} imports of {name} by cumulative time (-X importtime)")
        print(f"  {'imported':<52} {'cumul ms':>9} {'self ms':>8}")
        for row in rows:
            print(f"  {row['name']:<52} {row['cumulative_ms']:>9.1f} {row['self_ms']:>8.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
