#!/usr/bin/env bash
# Installs the headless browser tests/test_browser.py drives: Debian's chromium (Playwright's Python package uses it
# through executable_path; never run `playwright install`, which downloads browsers from the internet).
# The playwright Python package itself comes from requirements-dev.txt.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
    echo "chromium already installed: $(chromium --version 2>/dev/null || true)"
    exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then SUDO="sudo"; fi
$SUDO apt-get update
$SUDO apt-get install -y --no-install-recommends chromium
# Optional: emoji glyphs in screenshots (buttons and status icons); harmless if unavailable.
$SUDO apt-get install -y --no-install-recommends fonts-noto-color-emoji || true
chromium --version
