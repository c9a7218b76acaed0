# Helpers shared by the launch scripts (sourced, not run). Each script keeps its own option parsing.

# The script's header comment (from line 2 to the first non-comment line) is its --help.
usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }
die() { echo "error: $*" >&2; exit 2; }
need_value() { [ $# -ge 2 ] || die "$1 needs a value (see --help)"; }
abspath() { case "$1" in /*) printf '%s\n' "$1" ;; *) printf '%s\n' "$PWD/${1#./}" ;; esac; }
quote() { local out=() a; for a in "$@"; do out+=("$(printf '%q' "$a")"); done; echo "${out[*]}"; }

# assign_positionals NAME...: fill the named variables from the global array `positional`, in order
# (the zoo's positional form), refusing a value given both ways and any argument left over.
assign_positionals() {
  local name
  for name in "$@"; do
    [ ${#positional[@]} -gt 0 ] || break
    [ -z "${!name}" ] || die "$name given both as an option and as an argument"
    printf -v "$name" '%s' "${positional[0]}"
    positional=("${positional[@]:1}")
  done
  [ ${#positional[@]} -eq 0 ] || die "unexpected argument '${positional[0]}' (arguments for run_pretrain.py go after --)"
}
