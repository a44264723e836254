#!/usr/bin/env bash
# The nightly regression workload (issue F9; docs/nightly.md): the quickstart's comparison at fixed
# seeds (the synthetic suite, the shipped demo VLM converted to MLA and fine-tuned at two d_kv,
# every compared KV method), appended to one results database as one run per configuration, named
# nightly/<stamp>/<configuration> in the dashboard series nightly/<configuration>. Then every
# configuration is gated against its previous night by `mla-bench regress`: a metric that dropped
# beyond the tolerance (or disappeared, or KV bytes that grew) fails the night, naming it.
#
# Usage: tools/nightly.sh [--db FILE] [--work-dir DIR] [--stamp NAME] [--tolerance T] [--site DIR]
#                         [-- extra quickstart options, e.g. --samples 20 --steps 5]
#   --db         the database that accumulates the nights (default nightly/results.sqlite)
#   --work-dir   scratch of this night: the suite (reused across nights) and the converted models
#                (default nightly/work)
#   --stamp      this night's name (default: UTC date and time, e.g. 20261203T021500Z)
#   --tolerance  allowed drop in each metric's units (default 0: runs are deterministic, so any
#                drop is a change in behaviour; speed never fails the gate)
#   --site       where the dashboard is written (default nightly/site)
# MLA_BENCH overrides the binary (default build/mla-bench). Exit codes: 0 no regression (or the
# first night), 1 a regression (each listed by regress), 2 the workload itself failed.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${MLA_BENCH:-build/mla-bench}
DB=nightly/results.sqlite
WORK=nightly/work
SITE=nightly/site
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
TOL=0
EXTRA=()
while [ $# -gt 0 ]; do
  case "$1" in
    --db) DB=$2; shift 2 ;;
    --work-dir) WORK=$2; shift 2 ;;
    --stamp) STAMP=$2; shift 2 ;;
    --tolerance) TOL=$2; shift 2 ;;
    --site) SITE=$2; shift 2 ;;
    --) shift; EXTRA=("$@"); break ;;
    -h|--help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "nightly.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
[ -x "$BIN" ] || { echo "nightly.sh: $BIN not found (build first: tools/setup.sh)" >&2; exit 2; }
mkdir -p "$(dirname "$DB")" "$WORK"
PREFIX="nightly/$STAMP"
# The converted models are rebuilt every night (a change in conversion or training must show);
# the synthetic suite is a pure function of its seed and is reused.
rm -rf "$WORK/models"

echo "== nightly $STAMP: workload into $DB"
if ! "$BIN" quickstart --work-dir "$WORK" --db "$DB" --run-prefix "$PREFIX" \
    --series-prefix nightly --seed 7 "${EXTRA[@]}"; then
  echo "nightly.sh: the workload failed (exit 2)" >&2
  exit 2
fi

# This night's configurations, and for each the newest earlier night's run of it.
mapfile -t PAIRS < <(python3 - "$DB" "$PREFIX" <<'EOF'
import sqlite3, sys
db, prefix = sys.argv[1], sys.argv[2]
con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
rows = con.execute("SELECT id, name FROM runs WHERE name LIKE 'nightly/%' ORDER BY id").fetchall()
mine = [(i, n) for i, n in rows if n.startswith(prefix + "/")]
for i, name in mine:
    config = name[len(prefix) + 1:]
    earlier = [n for j, n in rows if j < i and not n.startswith(prefix + "/")
               and n.split("/", 2)[2:] == [config]]
    print(f"{config}|{earlier[-1] if earlier else ''}|{name}")
EOF
)

status=0
failed=()
for pair in "${PAIRS[@]}"; do
  IFS="|" read -r config baseline candidate <<<"$pair"  # "|": tabs would merge an empty field
  if [ -z "$baseline" ]; then
    echo "== $config: first night, nothing to compare"
    continue
  fi
  echo "== $config: $baseline -> $candidate"
  set +e
  "$BIN" regress --db "$DB" --baseline "$baseline" --candidate "$candidate" --tolerance "$TOL"
  code=$?
  set -e
  if [ "$code" -eq 1 ]; then
    failed+=("$config")
    status=1
  elif [ "$code" -ne 0 ]; then
    echo "nightly.sh: regress failed on $config (exit $code)" >&2
    exit 2
  fi
done

"$BIN" dashboard --db "$DB" --out "$SITE" >/dev/null
echo "== dashboard: $SITE/index.html"
if [ "$status" -ne 0 ]; then
  echo "nightly $STAMP: REGRESSION in ${failed[*]} (the lines marked above name the metrics)"
else
  echo "nightly $STAMP: no regression (${#PAIRS[@]} configurations)"
fi
exit "$status"
