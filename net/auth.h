/*
 * net/auth.h - access tokens (docs/SECURITY.md): which requests need one, which token a request
 * carries, and the actor its writes record in the ledger.
 *
 * Tokens come from the configuration as "name:secret" pairs separated by commas. With at least
 * one token configured, every request that writes needs a valid one (the envelope's `token`;
 * on HTTP also `Authorization: Bearer`), and so do reads unless reads are left open. A server
 * with a listener beyond loopback refuses to start without tokens. The writes of an authenticated
 * request record the token's name as their actor.
 */
#ifndef TRASTENDA_NET_AUTH_H
#define TRASTENDA_NET_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto.h"

#define AUTH_TOKENS_MAX       16  /* tokens in a configuration */
#define AUTH_SECRET_BYTES_MIN 16  /* shorter secrets are refused: guessable */
#define AUTH_SECRET_BYTES_MAX 256 /* longer ones gain nothing */

struct auth_token {
    char name[TRASTENDA_ID_BYTES_MAX + 1];
    uint32_t name_len;
    uint8_t secret[AUTH_SECRET_BYTES_MAX];
    uint32_t secret_len;
};

struct auth {
    struct auth_token tokens[AUTH_TOKENS_MAX];
    uint32_t n;
    bool open_reads; /* reads need no token */
};

/*
 * Parses tokens ("name:secret,name2:secret2"; NULL or "" for none) and checks the listeners
 * (NULL-terminated array of addresses): one beyond loopback without tokens is an error.
 * E_INVALID with a message naming the problem.
 */
trastenda_err auth_init(struct auth *a, const char *tokens, bool open_reads,
                        const char *const *listeners, char *err, size_t errlen);

/* Whether an nng or HTTP address only accepts local peers (loopback, ipc://, inproc://). */
bool auth_addr_is_local(const char *addr);

/*
 * Whether a validated request may run: TRASTENDA_OK, or E_UNAUTHORIZED with msg (cap bytes).
 * On OK with a token, the request's valid write ops get the token's name as their actor.
 */
trastenda_err auth_request(const struct auth *a, struct proto_req *q, char *msg, size_t cap);

/* Whether a token is one of the configured ones (true when none is configured): the replication
 * endpoint's check, with no open-reads exemption (a stranger must not pull the log). */
bool auth_token_valid(const struct auth *a, const char *token, size_t len);

/* Whether a read-only surface (metrics, resource reads) may be served for this token (NULL or
 * empty: none given). */
bool auth_read_allowed(const struct auth *a, const char *token, size_t len);

#endif /* TRASTENDA_NET_AUTH_H */
