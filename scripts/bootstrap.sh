#!/usr/bin/env bash
# Makes sure the pinned toolchain (Node 24 LTS, pnpm) is present, installing it into the user's cache dir
# (never globally) when the machine's own is older. Prints the bin dir to put first on PATH.
# Usage: eval "$(scripts/bootstrap.sh --print-path)" or PATH="$(scripts/bootstrap.sh --bin-dir):$PATH"
set -euo pipefail

NODE_MAJOR=24
NODE_VERSION=24.15.0
PNPM_VERSION=12.21.0
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/kubevirt-ts/tools"
BIN="$CACHE/bin"
mkdir -p "$BIN"

say() { echo "bootstrap: $*" >&2; }

node_major() { "$1" -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }

# Node: the machine's if new enough, else the pinned one from the npm registry (the `node` package ships the binary).
if [ -x "$BIN/node" ] && [ "$(node_major "$BIN/node")" -ge "$NODE_MAJOR" ]; then
  :
elif command -v node >/dev/null && [ "$(node_major "$(command -v node)")" -ge "$NODE_MAJOR" ]; then
  ln -sf "$(command -v node)" "$BIN/node"
else
  have=$(command -v node >/dev/null && node --version || echo none)
  say "this machine's node is $have; installing Node $NODE_VERSION into $CACHE/node (not global; delete that folder to remove it)"
  command -v npm >/dev/null || { say "npm is needed to fetch Node $NODE_MAJOR from the npm registry; install any Node.js with npm first"; exit 1; }
  npm install --silent --no-audit --no-fund --prefix "$CACHE/node" "node@$NODE_VERSION" >&2
  ln -sf "$CACHE/node/node_modules/node/bin/node" "$BIN/node"
fi

# pnpm, pinned, run by the Node above.
if [ ! -x "$CACHE/pnpm/node_modules/.bin/pnpm" ] || [ "$("$BIN/node" "$CACHE/pnpm/node_modules/pnpm/bin/pnpm.mjs" --version 2>/dev/null)" != "$PNPM_VERSION" ]; then
  say "installing pnpm $PNPM_VERSION into $CACHE/pnpm (not global)"
  PATH="$BIN:$PATH" npm install --silent --no-audit --no-fund --prefix "$CACHE/pnpm" "pnpm@$PNPM_VERSION" >&2
fi
cat > "$BIN/pnpm" <<SH
#!/bin/sh
exec "$BIN/node" "$CACHE/pnpm/node_modules/pnpm/bin/pnpm.mjs" "\$@"
SH
chmod +x "$BIN/pnpm"

case "${1:-}" in
  --bin-dir) echo "$BIN" ;;
  *) say "node $("$BIN/node" --version), pnpm $("$BIN/pnpm" --version) in $BIN" ;;
esac
