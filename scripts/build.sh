#!/bin/sh
# Builds everything, inside the Debian 13 environment (scripts/debian13.sh):
#   build/generated/                   the configuration schema, compiled by ajv (standalone),
#                                      and the status page (src/ui/, one HTML document)
#   build/bundle.js                    the TypeScript, type-checked and bundled by esbuild
#   build/libOrthancMultitenantDicom.so  the plugin (CMakeLists.txt via cmake-js), bundle embedded
#   build/Release/sdk_bridge.node      the SDK bridge as a plain addon for unit tests (binding.gyp)
set -eu
cd "$(dirname "$0")/.."
[ -d node_modules ] || { echo "build.sh: run npm ci first" >&2; exit 1; }
mkdir -p build
exec 9>build/.lock
flock 9  # concurrent builds share build/

node scripts/compile-schema.mjs
node scripts/compile-ui.mjs
npx tsc --noEmit -p .
# pg's optional modules (its libpq binding, its Cloudflare sockets) are never loaded here.
npx esbuild src/main.ts --bundle --platform=node --target=node20 --format=iife \
  --external:pg-native --external:pg-cloudflare --outfile=build/bundle.js --log-level=warning
npx node-gyp configure build --nodedir=/usr --loglevel=warn >/dev/null
npx cmake-js compile --out build/cmake --log-level warn >/dev/null
ls -l build/libOrthancMultitenantDicom.so
