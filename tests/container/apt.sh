# Sourced by run.sh and examples.sh: installing Debian packages a check needs.

# Run a command as root (directly, or through a password-less sudo); fail otherwise.
as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"
    elif command -v sudo >/dev/null 2>&1; then sudo -n "$@"
    else return 1; fi
}

# apt-get install the packages (no recommends, quiet), updating the lists
# once when the first try fails.
apt_install() {
    export DEBIAN_FRONTEND=noninteractive
    as_root apt-get install -y -q --no-install-recommends "$@" >/dev/null 2>&1 \
        || { as_root apt-get update -q >/dev/null 2>&1 \
             && as_root apt-get install -y -q --no-install-recommends "$@" >/dev/null 2>&1; }
}
