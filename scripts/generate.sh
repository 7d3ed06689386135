#!/usr/bin/env bash
# Regenerates the committed protobuf code from proto/ with protoc + ts-proto.
# Usage: scripts/generate.sh          regenerate in place
#        scripts/generate.sh --check  regenerate into a temp dir and fail if the committed code differs
set -euo pipefail
cd "$(dirname "$0")/.."
command -v protoc >/dev/null || { echo "generate: protoc not found (apt-get install protobuf-compiler)" >&2; exit 1; }
plugin="$PWD/node_modules/.bin/protoc-gen-ts_proto"
opts="outputServices=grpc-js,esModuleInterop=true,importSuffix=.js,env=node,useExactTypes=false,forceLong=bigint,outputClientImpl=false,useDate=false"

# target dir <- proto files (relative to proto/)
gen() {
  local out="$1"; shift
  mkdir -p "$out"
  protoc --plugin="protoc-gen-ts_proto=$plugin" -I proto --ts_proto_out="$out" --ts_proto_opt="$opts" "$@"
  # generated code is not held to the project's lint and strictness rules
  find "$out" -name '*.ts' -print0 | xargs -0 sed -i '1{/^\/\/ @ts-nocheck/!s/^/\/\/ @ts-nocheck\n/}'
}

generate_all() {
  local root="$1"
  gen "$root/packages/spiffe/src/workloadapi/gen" spiffe/workload.proto
  # SPIRE server API, the Tessera sync extension and the Envoy SDS v3 subset, in one run so imports resolve
  gen "$root/packages/common/src/api/gen" $(cd "$root/proto" && find spire tessera envoy google/rpc -name '*.proto' 2>/dev/null | LC_ALL=C sort)
  if [ -f "$root/scripts/generate-extra.sh" ]; then ROOT="$root" bash "$root/scripts/generate-extra.sh"; fi
}

if [ "${1:-}" = "--check" ]; then
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  mkdir -p "$tmp/packages"
  cp -r scripts "$tmp/"
  for d in packages/*/src; do
    pkg=$(basename "$(dirname "$d")")
    [ -d "$d" ] || continue
    mkdir -p "$tmp/packages/$pkg/src"
  done
  ln -s "$PWD/proto" "$tmp/proto"
  ln -s "$PWD/node_modules" "$tmp/node_modules"
  (cd "$tmp" && generate_all "$tmp")
  status=0
  for g in $(cd "$tmp" && find packages -type d -name gen); do
    if ! diff -r "$tmp/$g" "$g" >/dev/null 2>&1; then
      echo "generate: $g is out of date; run npm run generate" >&2
      status=1
    fi
  done
  exit $status
fi
generate_all "$PWD"
echo "generate: done"
