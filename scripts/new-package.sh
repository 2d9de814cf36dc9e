#!/usr/bin/env bash
# Scaffold a workspace: scripts/new-package.sh packages|services NAME "description" [dep ...]
# Deps are other workspaces (short names); each becomes a dependency and a TS project reference.
set -euo pipefail
kind=$1 name=$2 desc=$3; shift 3
dir="$kind/$name"
mkdir -p "$dir/src"
deps="" refs=""
for d in "$@"; do
  where=packages; [ -d "services/$d" ] && where=services
  deps="$deps\"@hyphae/$d\": \"*\","
  refs="$refs{ \"path\": \"../../$where/$d\" },"
done
cat > "$dir/package.json" <<JSON
{
  "name": "@hyphae/$name",
  "version": "0.1.0",
  "private": true,
  "description": "$desc",
  "type": "module",
  "main": "./dist/index.js",
  "types": "./dist/index.d.ts",
  "exports": { ".": { "types": "./dist/index.d.ts", "default": "./dist/index.js" } },
  "dependencies": { ${deps%,} }
}
JSON
cat > "$dir/tsconfig.json" <<JSON
{
  "extends": "../../tsconfig.base.json",
  "compilerOptions": { "rootDir": "src", "outDir": "dist", "tsBuildInfoFile": "dist/.tsbuildinfo" },
  "include": ["src"],
  "references": [ ${refs%,} ]
}
JSON
