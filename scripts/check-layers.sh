#!/usr/bin/env bash
# Fails if any #include in the tree runs upward through the layers.
#
# The layers, lowest first: schema <- base <- serialize <- migrate <- supervisor <- bench.
# A file may include its own layer and the layers below it; tests/ may include anything.
# Usage: scripts/check-layers.sh [SOURCE_DIR]   Exit status: 0 clean, 1 upward includes found.
set -euo pipefail
root=${1:-$(cd "$(dirname "$0")/.." && pwd)}
layers=(schema base serialize migrate supervisor bench)

rank() {
  local i
  for i in "${!layers[@]}"; do
    [ "${layers[$i]}" = "$1" ] && { echo "$i"; return; }
  done
  echo -1
}

bad=0
for dir in "${layers[@]}"; do
  mine=$(rank "$dir")
  [ -d "$root/$dir" ] || continue
  while IFS= read -r hit; do
    file=${hit%%:*}; rest=${hit#*:}; line=${rest%%:*}
    target=$(sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"/]*\)\/.*/\1/p' <<<"${rest#*:}")
    [ -n "$target" ] || continue
    theirs=$(rank "$target")
    if [ "$theirs" -gt "$mine" ]; then
      echo "${file#"$root"/}:$line: $dir/ includes $target/ (upward: ${layers[*]})"
      bad=1
    fi
  done < <(grep -rn --include='*.h' --include='*.cpp' --include='*.capnp' -E '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$root/$dir" || true)
done
if [ "$bad" = 0 ]; then echo "layers: every include points down (${layers[*]})"; fi
exit "$bad"
