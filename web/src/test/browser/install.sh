#!/usr/bin/env bash
# Installs what the browser end-to-end check (e2e.mjs) needs:
#   - Debian's chromium package at /usr/bin/chromium (skipped if present)
#   - playwright-core from package-lock.json into ./node_modules (skipped if present)
# Safe to run again: it only does the steps that are still missing.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

if [[ -x /usr/bin/chromium ]]; then
  echo "chromium: already installed at /usr/bin/chromium ($(/usr/bin/chromium --version 2>/dev/null || echo 'version unknown'))"
else
  if [[ "$(id -u)" -eq 0 ]]; then
    as_root=()
  elif command -v sudo >/dev/null 2>&1; then
    as_root=(sudo)
  else
    echo "error: /usr/bin/chromium is missing and installing it needs root;" >&2
    echo "       run this script as root or install sudo (or: apt-get install chromium)." >&2
    exit 1
  fi
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "error: /usr/bin/chromium is missing and apt-get is not available;" >&2
    echo "       install Chromium yourself and set CHROMIUM=/path/to/chromium." >&2
    exit 1
  fi
  echo "chromium: not found, installing Debian's chromium package with apt-get (this takes a minute)..."
  export DEBIAN_FRONTEND=noninteractive
  "${as_root[@]}" apt-get update
  "${as_root[@]}" apt-get install -y --no-install-recommends chromium
  echo "chromium: installed ($(/usr/bin/chromium --version 2>/dev/null || echo 'version unknown'))"
fi

if ! command -v npm >/dev/null 2>&1; then
  echo "error: npm is not installed; install Node.js 20 or newer first." >&2
  exit 1
fi

if [[ -d "$here/node_modules/playwright-core" ]]; then
  echo "playwright-core: already installed in $here/node_modules"
else
  echo "playwright-core: installing from package-lock.json with npm ci..."
  (cd "$here" && npm ci --no-audit --no-fund)
  echo "playwright-core: installed"
fi

echo "done: run 'node $here/e2e.mjs <baseUrl> <screenshotDir>' to check the pages."
