#!/usr/bin/env bash
# tests/net/install_check.sh BUILD_DIR SOURCE_DIR - installs into a temporary prefix and checks
# what a user does: `pkg-config --cflags --libs trastenda`, compile and link a program against
# the installed library only, run it (it prints an error name without a server).
set -euo pipefail
build=$1
src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cmake --install "$build" --prefix "$tmp/prefix" >/dev/null
libdir=$(ls -d "$tmp"/prefix/lib*/ | head -1)
export PKG_CONFIG_PATH="$libdir/pkgconfig"
flags=$(pkg-config --define-variable=prefix="$tmp/prefix" --cflags --libs trastenda)
cat > "$tmp/user.c" <<'C'
#include <stdio.h>
#include <string.h>
#include <trastenda.h>
#include <trastenda/client.h>
int main(void) {
    const char *nodes[] = {"ipc:///nonexistent/trastenda"};
    trastenda_client_config cfg;
    trastenda_client_config_default(&cfg);
    cfg.nodes = nodes;
    cfg.n_nodes = 1;
    cfg.timeout_ms = 200;
    trastenda_client *c;
    if (trastenda_client_open(&cfg, &c, NULL, 0) != TRASTENDA_OK) return 1;
    trastenda_reply r;
    trastenda_err e = trastenda_status(c, &r);
    printf("%s\n", trastenda_err_name(e));
    trastenda_client_close(c);
    return strcmp(trastenda_err_name(TRASTENDA_E_SHORT), "TRASTENDA_E_SHORT") == 0 ? 0 : 2;
}
C
cc -o "$tmp/user" "$tmp/user.c" $flags
out=$(LD_LIBRARY_PATH="$libdir" "$tmp/user")
[[ "$out" == "TRASTENDA_E_TIMEOUT" || "$out" == "TRASTENDA_E_CONNECT" ]] || { echo "unexpected: $out"; exit 1; }
# Only the public API is exported.
if nm -D --defined-only "$libdir/libtrastenda.so" | awk '$2=="T"{print $3}' | grep -v '^trastenda_' ; then
    echo "libtrastenda exports non-API symbols"; exit 1
fi
echo "install_check: ok ($out without a server)"
