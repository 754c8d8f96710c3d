"""Reliability tests: the hypothesis profiles, and the fault matrix printed at the end of the run."""

from __future__ import annotations

import os
import sys
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis.database import DirectoryBasedExampleDatabase

# CI (env CI set, as .ci/run has it): at least 1,000 examples per trigger. Locally: a quick pass.
# KEYGUARD_HYPOTHESIS_PROFILE picks one explicitly (e.g. "ci" to reproduce CI's run here).
settings.register_profile(
    "ci",
    max_examples=1000,
    deadline=None,
    derandomize=True,  # the same 1,000 examples on every run: a red CI is reproducible as it stands
    database=None,  # a fresh clone: nothing to replay; a failure prints its reproduction blob
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)
settings.register_profile(
    "dev",
    max_examples=150,
    deadline=None,
    database=DirectoryBasedExampleDatabase(".pytest_cache/hypothesis"),  # git-ignored; replays failures
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)
settings.load_profile(os.environ.get("KEYGUARD_HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "dev"))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    matrix = _collected("test_fault_matrix")
    hostile = _collected("test_hostile_input")
    if matrix is not None and matrix.RESULTS:
        tr = terminalreporter
        tr.section("fault matrix (calls x faults: outcome x faulted attempts)")
        width = max(len(r.label) for r in matrix.ALL_ROWS)
        cols = [c.label for c in matrix.COLUMNS]
        tr.write_line(" " * width + " | " + " | ".join(f"{c:>18}" for c in cols))
        cells = attempts = 0
        for row in matrix.ALL_ROWS:
            shown = []
            for col in matrix.COLUMNS:
                got = matrix.RESULTS.get((row.label, col.label))
                want = row.expected(col).code
                if got is None:
                    shown.append(f"{'(not run)':>18}")
                    continue
                cells += 1
                attempts += int(got.split("x")[-1]) if "x" in got else 0
                mark = "" if got.split()[0] == want else f" (want {want})"
                shown.append(f"{got + mark:>18}")
            tr.write_line(f"{row.label:<{width}} | " + " | ".join(shown))
        for (service, op), why in matrix.NEVER_CALLED.items():
            tr.write_line(f"{op + ' (' + service + ')':<{width}} | never called: {why}")
        for o in matrix.OUTCOMES:
            tr.write_line(f"  {o.code}: {o.meaning}")
        tr.write_line(f"  {cells} cells run, {attempts} faulted attempts (botocore's retries included)")
    if hostile is not None and hostile.EXAMPLES:
        terminalreporter.section("hostile input (hypothesis)")
        for trigger, counts in sorted(hostile.EXAMPLES.items()):
            terminalreporter.write_line(
                f"  {trigger}: {counts['examples']} examples, {counts['acted']} changed IAM, "
                f"{counts['malformed']} rejected as malformed, {counts['failed']} raised ResponseFailed"
            )


def _collected(name: str) -> Any:
    """The test module if this run collected it (under whichever name pytest imported it)."""
    for module_name, module in list(sys.modules.items()):
        if module_name.rsplit(".", 1)[-1] == name and hasattr(module, "__file__"):
            return module
    return None
