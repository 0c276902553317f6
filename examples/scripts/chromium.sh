#!/usr/bin/env bash
# Installs Debian's chromium for the browser test of the live cache page
# (examples/workspaces/cmd/demo/browser_test.go), when it is missing.
#
# The test runs it by itself under CI=true; on a laptop run it by hand
# (make chromium) or point CHROMIUM at a Chrome or Chromium binary. It
# needs root and apt: nothing else is downloaded, no browser build of its
# own, no driver (chromedp speaks the DevTools protocol to the browser).
set -euo pipefail

bin=${CHROMIUM:-/usr/bin/chromium}
if [ -x "$bin" ]; then
	echo "chromium.sh: $bin is there"
	exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
	echo "chromium.sh: no $bin and no apt-get: install Chromium or Chrome and set CHROMIUM to its binary" >&2
	exit 1
fi
sudo=
if [ "$(id -u)" != 0 ]; then
	if ! command -v sudo >/dev/null 2>&1; then
		echo "chromium.sh: apt-get needs root, and there is no sudo" >&2
		exit 1
	fi
	sudo=sudo
fi
echo "chromium.sh: installing Debian's chromium (apt-get install chromium; a few minutes)"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends chromium >/dev/null
if [ ! -x /usr/bin/chromium ]; then
	echo "chromium.sh: apt-get installed chromium, but /usr/bin/chromium is missing" >&2
	exit 1
fi
echo "chromium.sh: $(/usr/bin/chromium --version 2>/dev/null || echo /usr/bin/chromium) installed"
