#!/usr/bin/env bash
# rowstream demo: from a fresh clone to a CSV streamed into Kafka, with live progress.
#   npm run demo            (or: bash scripts/demo.sh)
# Needs only npm (any Node >= 20 to run it), Python 3 (with venv) and Java 17 on the machine; the
# project's own Node 24 (npm package `node`), moto and Kafka are installed on the first run. Settings (environment):
#   ROWSTREAM_DEMO_ROWS       data rows in the sample            (default 300000)
#   ROWSTREAM_DEMO_BAD_ROWS   rows with a wrong field count      (default 0; > 0 ends with exit 3)
#   ROWSTREAM_DEMO_TOPIC      Kafka topic                        (default rowstream.demo)
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
die() { printf 'demo: %s\n' "$*" >&2; exit 1; }

rows="${ROWSTREAM_DEMO_ROWS:-300000}"
bad="${ROWSTREAM_DEMO_BAD_ROWS:-0}"
topic="${ROWSTREAM_DEMO_TOPIC:-rowstream.demo}"

# Say what is missing before anything is downloaded.
command -v npm >/dev/null || die "npm is required (it installs the project's own Node 24)"
command -v python3 >/dev/null || die "python3 is required (moto, the AWS emulator, runs in a venv under .local/)"
command -v java >/dev/null || die "Java 17 is required (the local Kafka broker); install a JDK 17 and retry"

if [ ! -x node_modules/.bin/node ]; then
  say "installing dependencies and the project's Node 24 (npm ci)"
  npm ci --no-audit --no-fund
fi
# The project's Node first, also when this script is started with bash directly.
export PATH="$PWD/node_modules/.bin:$PATH"
[ "$(node -p 'process.versions.node.split(".")[0]')" = 24 ] || die "node_modules/.bin/node is not Node 24: run npm ci"

rowstream() { node bin/rowstream.mjs "$@"; }

say "starting the local stack (moto + Kafka; installed into .local/ on the first run) and the services"
rowstream local up

say "generating a sample: ${rows} rows with quoted commas, quotes and newlines"
sample=.local/samples/orders.csv
npx tsx samples/generate.ts --rows "$rows" --bad-rows "$bad" --out "$sample"

# A new key per run: the same bytes under the same key are the same job (by design), which would
# finish instantly the second time.
key="orders-$(date -u +%Y%m%dT%H%M%SZ).csv"
say "dropping it into s3://<bucket>/inbound/${key} and following the job"
set +e
rowstream drop "$sample" --key "$key" --topic "$topic"
code=$?
set -e

say "where to look next"
cat <<EOT
  rowstream status                      jobs, progress, rate, ETA, cost   (npx rowstream ... from this clone)
  rowstream dashboard                   live page on http://127.0.0.1:8787/
  rowstream topic read ${topic} --limit 5   the first records on the topic
  rowstream local status                services, pids, logs (.local/logs/)
  rowstream local down                  stop everything
EOT
exit "$code"
