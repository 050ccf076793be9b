# Helpers shared by the project's scripts (sourced; bash).

# wait_until SECONDS COMMAND...: runs COMMAND (quietly) every half second until it succeeds;
# returns 1 once SECONDS have passed. The caller says what did not happen.
wait_until() {
  local seconds=$1
  shift
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || return 1
    sleep 0.5
  done
}

# apt_install PACKAGE...: installs Debian packages, as root or through sudo, after one
# `apt-get update` per script run. Returns 1, saying why, when it cannot.
apt_install() {
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  if ! command -v apt-get >/dev/null; then
    printf '%s: missing, and apt-get is not available; install it by hand\n' "$*" >&2
    return 1
  fi
  if [ -z "${APT_UPDATED:-}" ]; then
    $sudo apt-get update -qq >/dev/null || printf 'apt-get update failed; trying the install anyway\n' >&2
    APT_UPDATED=1
  fi
  printf 'installing %s\n' "$*" >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@" >/dev/null
}
