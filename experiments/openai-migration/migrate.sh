#!/usr/bin/env bash
# The migration workflow of docs/migrating-from-openai.md, start to end: score the OpenAI fine-tune beside the local
# candidates, save the fine-tune as the baseline, and gate every local candidate against it.
# Exit 0 when at least one candidate may replace the fine-tune; 1 when none may; 2 or 3 on bad input or a failed variant.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
spec="$here/spec.yaml"
db="${DB:-results.duckdb}"
baseline="${BASELINE:-baselines/openai-migration.json}"
given="given-$(sed -n 's/^  checkpoint: \["openai:\([^"]*\)"\].*/\1/p' "$spec")"

harness sweep "$spec" --db "$db" || { rc=$?; [ "$rc" -eq 3 ] || exit "$rc"; echo "some variant failed (see above); gating those that finished"; }
mkdir -p "$(dirname "$baseline")"
harness baseline save latest --variant "$given" -o "$baseline" --db "$db"
harness report latest -o reports/openai-migration.html --db "$db"
passed=1
for candidate in lora-r16-e2 qlora-r16-e2; do
  if harness gate latest --baseline "$baseline" --variant "$candidate" --junit "reports/gate-$candidate.xml" --db "$db"; then
    echo "$candidate may replace ${given#given-}"
    passed=0
  fi
done
exit $passed
