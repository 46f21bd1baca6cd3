#!/usr/bin/env bash
# Renders an HTML report (e.g. one written by dev.gradscope.report.HtmlReport) to a PNG with
# headless Chromium, to look at a report on a machine without a browser or display.
#
# Installs the Debian package `chromium` with apt-get when no Chromium is on the PATH (needs root
# and network once). The page is loaded from disk with networking features switched off; the
# window is 1280 x 2400 CSS pixels, and a longer page is cut off at the bottom.
#
# Usage: scripts/screenshot-report.sh REPORT.html OUT.png
set -euo pipefail

fail() {
  echo "screenshot-report: $*" >&2
  exit 1
}

[[ $# -eq 2 ]] || fail "usage: scripts/screenshot-report.sh REPORT.html OUT.png"
report="$1"
out="$2"
[[ -f "$report" ]] || fail "no such file: $report"

find_chromium() {
  local name
  for name in chromium chromium-browser google-chrome; do
    if command -v "$name" >/dev/null 2>&1; then
      command -v "$name"
      return 0
    fi
  done
  return 1
}

if ! browser="$(find_chromium)"; then
  command -v apt-get >/dev/null 2>&1 || fail "Chromium is not installed and there is no apt-get to install it"
  sudo=""
  if [[ "$(id -u)" -ne 0 ]]; then
    command -v sudo >/dev/null 2>&1 || fail "Chromium is not installed; installing it needs root (or sudo)"
    sudo="sudo"
  fi
  echo "screenshot-report: installing chromium with apt-get" >&2
  $sudo apt-get update >&2 && $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y chromium >&2 \
    || fail "apt-get could not install chromium"
  browser="$(find_chromium)" || fail "apt-get installed chromium but it is not on the PATH"
fi

report_abs="$(cd "$(dirname "$report")" && pwd)/$(basename "$report")"
mkdir -p "$(dirname "$out")"
out_abs="$(cd "$(dirname "$out")" && pwd)/$(basename "$out")"
profile="$(mktemp -d)"
trap 'rm -rf "$profile"' EXIT
rm -f "$out_abs"

# Chromium prints harmless D-Bus and GPU warnings on servers; keep them for a failure message only.
if ! "$browser" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --hide-scrollbars --user-data-dir="$profile" \
    --screenshot="$out_abs" --window-size=1280,2400 "file://$report_abs" >"$profile/log" 2>&1; then
  cat "$profile/log" >&2
  fail "chromium failed to render $report"
fi
[[ -s "$out_abs" ]] || { cat "$profile/log" >&2; fail "chromium wrote no screenshot to $out"; }
echo "$out"
