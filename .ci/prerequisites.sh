# Installs the Debian packages a fresh machine lacks; sourced by .ci/test and .ci/run.
# Everything is checked first, so on a prepared machine this does nothing and needs no network.

have_pg_server() {
  local dir
  for dir in $(tr ':' ' ' <<<"${PATH}") "$(pg_config --bindir 2>/dev/null)" /usr/lib/postgresql/*/bin; do
    [ -x "${dir}/initdb" ] && [ -x "${dir}/pg_ctl" ] && [ -x "${dir}/postgres" ] && return 0
  done
  return 1
}

apt_install() {
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing missing packages: $*" >&2
  ${sudo} apt-get update -qq
  DEBIAN_FRONTEND=noninteractive ${sudo} apt-get install -y -qq --no-install-recommends "$@" >&2
}

ensure_prerequisites() {
  local missing=()
  have_pg_server || missing+=(postgresql)
  # psql, for `bookstore psql`.
  command -v psql >/dev/null || missing+=(postgresql-client)
  # libpq and pg_config, which diesel's pq-sys links against.
  [ -e /usr/include/postgresql/libpq-fe.h ] && command -v pg_config >/dev/null || missing+=(libpq-dev)
  # PgBouncer, for the scaling-out test (it starts one in front of a throwaway cluster).
  [ -x /usr/sbin/pgbouncer ] || command -v pgbouncer >/dev/null || missing+=(pgbouncer)
  # Headless Chromium and its WebDriver, for the browser tests.
  command -v chromium >/dev/null || missing+=(chromium)
  command -v chromedriver >/dev/null || missing+=(chromium-driver)
  # PostgreSQL refuses to run as root; as root the app runs it as this user.
  if [ "$(id -u)" -eq 0 ] && ! id postgres >/dev/null 2>&1; then missing+=(postgresql); fi
  if [ "${#missing[@]}" -gt 0 ]; then
    apt_install $(printf '%s\n' "${missing[@]}" | sort -u)
  fi
  # An SMTP server for the mail tests (they start it themselves): Python's aiosmtpd, from PyPI.
  if ! python3 -c 'import aiosmtpd' 2>/dev/null; then
    command -v pip3 >/dev/null || command -v pip >/dev/null || apt_install python3-pip
    echo "installing missing Python package: aiosmtpd" >&2
    $(command -v pip3 || command -v pip) install --quiet aiosmtpd >&2 \
      || $(command -v pip3 || command -v pip) install --quiet --break-system-packages aiosmtpd >&2
  fi
}
