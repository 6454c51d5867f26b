/*
 * net/tls.c - TLS on the server's listeners (docs/SECURITY.md): tls+tcp:// for requests and
 * events, https:// for HTTP. nng as Debian builds it does TLS with mbedTLS (TLS 1.2).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pem.h"
#include "srv.h"

/* pem_read with the config's message when it fails. */
static char *
read_pem(const char *path, char *err, size_t errlen, const char *what)
{
    char *buf = pem_read(path);
    if (buf == NULL)
        snprintf(err, errlen, "config: %s: cannot read %s (at most 1 MiB)", what, path);
    return buf;
}

trastenda_err
tls_server_config(const trastenda_server_config *cfg, nng_tls_config **out, char *err,
                  size_t errlen)
{
    *out = NULL;
    if (cfg->tls_cert == NULL || cfg->tls_cert[0] == '\0' || cfg->tls_key == NULL ||
        cfg->tls_key[0] == '\0') {
        snprintf(err, errlen, "config: a TLS listener needs tls-cert and tls-key");
        return TRASTENDA_E_INVALID;
    }
    bool want_ca = cfg->tls_client_auth != TRASTENDA_TLS_CLIENT_NONE;
    if (want_ca && (cfg->tls_ca == NULL || cfg->tls_ca[0] == '\0')) {
        snprintf(err, errlen,
                 "config: tls-client-auth needs tls-ca (the CAs of client certificates)");
        return TRASTENDA_E_INVALID;
    }
    char *cert = read_pem(cfg->tls_cert, err, errlen, "tls-cert");
    char *key = cert != NULL ? read_pem(cfg->tls_key, err, errlen, "tls-key") : NULL;
    char *ca = key != NULL && want_ca ? read_pem(cfg->tls_ca, err, errlen, "tls-ca") : NULL;
    trastenda_err code = TRASTENDA_OK;
    nng_tls_config *t = NULL;
    int rv;
    if (cert == NULL || key == NULL || (want_ca && ca == NULL)) {
        code = TRASTENDA_E_INVALID;
    } else if ((rv = nng_tls_config_alloc(&t, NNG_TLS_MODE_SERVER)) != 0 ||
               (rv = nng_tls_config_own_cert(t, cert, key, NULL)) != 0 ||
               (want_ca && (rv = nng_tls_config_ca_chain(t, ca, NULL)) != 0) ||
               (rv = nng_tls_config_auth_mode(
                    t, cfg->tls_client_auth == TRASTENDA_TLS_CLIENT_REQUIRED
                           ? NNG_TLS_AUTH_MODE_REQUIRED
                       : cfg->tls_client_auth == TRASTENDA_TLS_CLIENT_OPTIONAL
                           ? NNG_TLS_AUTH_MODE_OPTIONAL
                           : NNG_TLS_AUTH_MODE_NONE)) != 0) {
        snprintf(err, errlen, "config: TLS certificate, key or CA refused (%s): %s",
                 nng_strerror(rv), "check that tls-key matches tls-cert and both are PEM");
        code = TRASTENDA_E_INVALID;
    }
    free(cert);
    free(key);
    free(ca);
    if (code != TRASTENDA_OK) {
        if (t != NULL) nng_tls_config_free(t);
        return code;
    }
    *out = t;
    return TRASTENDA_OK;
}

trastenda_err
tls_client_config(const trastenda_server_config *cfg, const char *addr, nng_tls_config **out,
                  char *err, size_t errlen)
{
    *out = NULL;
    if (cfg->tls_ca == NULL || cfg->tls_ca[0] == '\0') {
        snprintf(err, errlen,
                 "config: following %s needs tls-ca (the CA of the leader's "
                 "certificate)",
                 addr);
        return TRASTENDA_E_INVALID;
    }
    bool own = cfg->tls_cert != NULL && cfg->tls_cert[0] != '\0' && cfg->tls_key != NULL &&
               cfg->tls_key[0] != '\0';
    char *ca = read_pem(cfg->tls_ca, err, errlen, "tls-ca");
    char *cert = ca != NULL && own ? read_pem(cfg->tls_cert, err, errlen, "tls-cert") : NULL;
    char *key = cert != NULL ? read_pem(cfg->tls_key, err, errlen, "tls-key") : NULL;
    nng_tls_config *t = NULL;
    int rv = 0;
    trastenda_err code = TRASTENDA_OK;
    if (ca == NULL || (own && (cert == NULL || key == NULL))) {
        code = TRASTENDA_E_INVALID;
    } else if ((rv = nng_tls_config_alloc(&t, NNG_TLS_MODE_CLIENT)) != 0 ||
               (rv = nng_tls_config_ca_chain(t, ca, NULL)) != 0 ||
               (own && (rv = nng_tls_config_own_cert(t, cert, key, NULL)) != 0) ||
               (rv = nng_tls_config_auth_mode(t, NNG_TLS_AUTH_MODE_REQUIRED)) != 0) {
        snprintf(err, errlen, "config: TLS client configuration refused (%s)", nng_strerror(rv));
        code = TRASTENDA_E_INVALID;
    }
    free(ca);
    free(cert);
    free(key);
    if (code != TRASTENDA_OK) {
        if (t != NULL) nng_tls_config_free(t);
        return code;
    }
    *out = t;
    return TRASTENDA_OK;
}

trastenda_err
tls_listen(const trastenda_server_config *cfg, nng_socket sock, const char *what, const char *addr,
           char *err, size_t errlen)
{
    nng_listener l;
    return tls_listen_l(cfg, sock, what, addr, &l, err, errlen);
}

trastenda_err
tls_listen_l(const trastenda_server_config *cfg, nng_socket sock, const char *what,
             const char *addr, nng_listener *out, char *err, size_t errlen)
{
    bool tls = strncmp(addr, "tls+", 4) == 0 || strncmp(addr, "wss", 3) == 0;
    nng_listener l;
    nng_tls_config *t = NULL;
    int rv = nng_listener_create(&l, sock, addr);
    if (rv != 0) {
        snprintf(err, errlen, "%s: cannot listen on %s: %s", what, addr, nng_strerror(rv));
        return TRASTENDA_E_IO;
    }
    if (tls) {
        trastenda_err code = tls_server_config(cfg, &t, err, errlen);
        if (code != TRASTENDA_OK) {
            nng_listener_close(l);
            return code;
        }
        rv = nng_listener_set_ptr(l, NNG_OPT_TLS_CONFIG, t);
        nng_tls_config_free(t); /* the listener holds its own reference */
    }
    if (rv == 0) rv = nng_listener_start(l, 0);
    if (rv != 0) {
        nng_listener_close(l);
        snprintf(err, errlen, "%s: cannot listen on %s: %s", what, addr, nng_strerror(rv));
        return TRASTENDA_E_IO;
    }
    *out = l;
    return TRASTENDA_OK;
}
