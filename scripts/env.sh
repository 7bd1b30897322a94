# Sourced by the scripts: one warm target directory outside the clone, shared by the demo,
# the tests and CI, so that the slow C++ and arrow builds happen once per machine.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/provdb-target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
