#!/usr/bin/env bash
# The fleet rules (deploy/prometheus) under promtool: `check` validates every
# rule file, `test` runs the unit tests beside this script on synthetic
# remote-write series. Exit 77 (skip) when promtool is missing: it comes with
# Debian's prometheus package, which scripts/setup installs.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
rules=("$here"/../../deploy/prometheus/*.rules.yml)
if ! command -v promtool >/dev/null; then
  echo "SKIP: promtool not found (Debian package prometheus; scripts/setup installs it)"
  exit 77
fi
case ${1:-} in
  check) exec promtool check rules "${rules[@]}" ;;
  test) exec promtool test rules "$here"/*_test.yml ;;
  *) echo "usage: $0 check|test" >&2; exit 2 ;;
esac
