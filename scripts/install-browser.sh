#!/usr/bin/env bash
# Install Debian's Chromium for the shortener's end-to-end browser test.
#
# Playwright's own browser download cannot be used here, so the test drives
# the system Chromium at /usr/bin/chromium.  Installing needs root; without it
# (or without a package source) this script says so and exits 0, and the
# browser test skips with a message naming this script.
set -euo pipefail

CHROMIUM=/usr/bin/chromium

if [ -x "$CHROMIUM" ]; then
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "install-browser: $CHROMIUM is missing and this is not root;" \
         "run 'sudo apt-get install chromium' to enable the browser test" >&2
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-browser: no apt-get here; install Chromium at $CHROMIUM" \
         "to enable the browser test" >&2
    exit 0
fi

export DEBIAN_FRONTEND=noninteractive
if apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium; then
    echo "install-browser: installed $("$CHROMIUM" --version 2>/dev/null || echo chromium)"
else
    echo "install-browser: could not install chromium; the browser test will skip" >&2
fi
exit 0
