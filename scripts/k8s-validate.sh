#!/usr/bin/env bash
# Validates deploy/k8s against the Kubernetes 1.31 schemas: every resource the kustomization
# lists, strictly (an unknown field is an error). kubernetes-validate (pinned) is installed once
# into a venv under ~/.cache/mixrec; later runs reuse it.
#
#   scripts/k8s-validate.sh
set -euo pipefail
cd "$(dirname "$0")/../deploy/k8s"

version=1.31.0
kubernetes=1.31.0
venv="${XDG_CACHE_HOME:-$HOME/.cache}/mixrec/kubernetes-validate-$version"
kv="$venv/bin/kubernetes-validate"

if ! "$kv" --version 2>/dev/null | grep -q "$version"; then
  echo "installing kubernetes-validate $version into $venv"
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "kubernetes-validate==$version"
fi
# The resources of kustomization.yaml (the Kustomization itself has no Kubernetes schema).
mapfile -t files < <(sed -n '/^resources:/,/^[a-z]/s/^  - //p' kustomization.yaml)
if [ "${#files[@]}" -eq 0 ]; then
  echo "no resources listed in deploy/k8s/kustomization.yaml" >&2
  exit 1
fi
"$kv" --kubernetes-version "$kubernetes" --strict "${files[@]}"
