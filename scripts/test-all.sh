#!/usr/bin/env bash
# The tests, from a fresh clone: installs everything they need, starts the local stack, runs `npm test`,
# then the CloudFormation checks of the prod templates (cfn-lint and checkov, `npm run cfn:check`).
#   npm run test:all        (CI runs this through .ci/run)
# Leaves the local stack running (npm run local:down stops it); CI stops it itself.
set -euo pipefail
cd "$(dirname "$0")/.."
# The project's own Node 24 (npm package `node`, installed by npm ci below) comes first, also when this
# script is started with bash directly rather than through `npm run test:all`.
export PATH="$PWD/node_modules/.bin:$PATH"

step() { printf '\n== %s (%s)\n' "$1" "$(date -u +%H:%M:%S)"; }

step 'npm packages'
if [[ ${CI:-} == true || ! -f node_modules/.package-lock.json || package-lock.json -nt node_modules/.package-lock.json ]]; then
  npm ci --no-audit --no-fund
else
  echo "node_modules is up to date with package-lock.json"
fi
echo "node $(node --version) ($(command -v node))"

step 'local stack: install (cached in .local/ after the first run)'
npm run --silent local:install

step 'CloudFormation checks: install cfn-lint + checkov (cached in .local/cfn-venv after the first run)'
npm run --silent cfn:check -- --install-only

step 'chromium (the dashboard test drives it headless)'
if [[ -x /usr/bin/chromium ]]; then
  /usr/bin/chromium --version 2>/dev/null || true
elif [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  /usr/bin/chromium --version
else
  echo "Debian's chromium is missing and this user cannot install it: run 'sudo apt-get install chromium'" >&2
  exit 1
fi

step 'local stack: up'
npm run --silent local:up

step 'npm test'
npm test

step 'CloudFormation checks: cfn-lint + checkov over the synthesized prod templates'
npm run --silent cfn:check
