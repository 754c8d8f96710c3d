#!/bin/bash
# The concurrency tests N times in a row (default 20) while two bounded busy loops load both cores.
# `switch`: also make the interpreter switch threads every 10 us (sys.setswitchinterval), which is what
# first reproduced the ledger race (2 of 15 runs failed before the fix). Run from the repository root.
n=${1:-20}
mode=$2
timeout 3600 sh -c 'while :; do :; done' &
b1=$!
timeout 3600 sh -c 'while :; do :; done' &
b2=$!
trap 'kill $b1 $b2 2>/dev/null' EXIT
tests=(
  tests/reliability/test_redelivery.py::test_two_events_for_one_key_at_once_leave_one_quarantine_and_both_are_announced
  tests/reliability/test_redelivery.py::test_the_same_event_twice_at_once_is_announced_once
  tests/reliability/test_ledger_races.py
)
if [ "$mode" = switch ]; then
  run=(.venv/bin/python -c "import sys; sys.setswitchinterval(1e-5); import pytest; sys.exit(pytest.main(sys.argv[1:]))")
else
  run=(.venv/bin/python -m pytest)
fi
passed=0
for i in $(seq 1 "$n"); do
  log=$(mktemp)
  if "${run[@]}" "${tests[@]}" -q -s -p no:cacheprovider >"$log" 2>&1; then
    passed=$((passed + 1))
  else
    grep -E "^(FAILED|E ) " "$log" | head -5
  fi
  echo "run $i: $(grep -oE '[0-9]+ transaction conflicts met' "$log"); $(tail -1 "$log")"
  rm -f "$log"
done
echo "passed $passed/$n"
[ "$passed" = "$n" ]
