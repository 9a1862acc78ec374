#!/usr/bin/env bash
# Copy the Sphinx inventories (objects.inv) that Debian's documentation packages ship into
# docs/_inventories/, so that the offline docs build links names of Python and scikit-learn to
# their documentation. Needs apt (Debian, Ubuntu) and its package index; does nothing
# elsewhere, and the build then leaves those names unlinked.
set -euo pipefail
out="$(cd "$(dirname "$0")" && pwd)/_inventories"
if ! command -v apt-get >/dev/null; then
    echo "docs/_inventories.sh: no apt-get; the docs build without inventories"
    exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
apt-get update -qq
# python3-doc only depends on the versioned package that holds the HTML (python3.11-doc, ...)
pydoc=$(apt-cache depends python3-doc | awk '/Depends: python3\.[0-9]+-doc/ && !f {print $2; f = 1}')
apt-get download -qq python-sklearn-doc "$pydoc" 2>/dev/null
mkdir -p "$out"
for deb in *.deb; do
    inv=$(dpkg-deb -c "$deb" | awk '/\/html\/objects\.inv$/ && !f {print $NF; f = 1}')
    case "$deb" in
        python-sklearn-doc*) name=sklearn ;;
        *) name=python ;;
    esac
    dpkg-deb --fsys-tarfile "$deb" | tar -xO "$inv" > "$out/$name.inv"
    echo "docs/_inventories/$name.inv from $deb"
done
