#!/bin/sh
# `npm run bench [-- --quick] [-- --disk]`, inside the Debian 13 environment.
set -eu
cd "$(dirname "$0")/.."
scripts/build.sh >/dev/null
npx esbuild bench/bench.ts --bundle --platform=node --format=esm --target=node20 \
  --outfile=build/bench.mjs --log-level=warning
exec node build/bench.mjs "$@"
