#!/usr/bin/env bash
# Sets up the machine (scripts/setup.sh), then runs the main job. Until the app
# lands that is the reference backend, jamz-server, on http://127.0.0.1:5050
# with its data in ./jamz-data; arguments are passed to it (see --help).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec cargo run --release --locked -p jamz-server -- "$@"
