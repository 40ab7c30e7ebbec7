#!/usr/bin/env bash
# The test command: sets up .venv (torch first, then isrnet with its test extras) and runs the test suite.
# Usage: bash run_tests.sh [extra pytest arguments]
set -e
cd "$(dirname "$0")"
source scripts/setup_env.sh
set -e
python -m pytest -q tests "$@"
