# Shared by scripts/serve and scripts/test: make sure uv exists and the locked environment is
# installed. Sourced, not run.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export PATH="$HOME/.local/bin:$PATH"
if ! command -v uv >/dev/null 2>&1; then
  echo "sessionbase: installing uv (the Python package manager) from PyPI…" >&2
  python3 -m pip install --user --quiet --disable-pip-version-check "uv==0.13.8" \
    || python3 -m pip install --user --quiet --break-system-packages "uv==0.13.8"
fi
