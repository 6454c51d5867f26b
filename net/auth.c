/*
 * net/auth.c - access tokens (net/auth.h).
 *
 * Secrets are compared in time independent of where they differ, against every configured token
 * (a request's time does not tell which token, or which prefix, matched).
 */
#include "auth.h"

#include <stdio.h>
#include <string.h>

#define BIT(f) (1ull << (f))

static trastenda_err
bad(char *err, size_t errlen, const char *what, const char *detail)
{
    snprintf(err, errlen, "config: %s%s", what, detail);
    return TRASTENDA_E_INVALID;
}

/* A token name is an id: 1..64 bytes of letters, digits and - _ . @ (it lands in the ledger). */
static bool
name_ok(const char *s, size_t n)
{
    if (n == 0 || n > TRASTENDA_ID_BYTES_MAX) return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '_' || c == '.' || c == '@';
        if (!ok) return false;
    }
    return true;
}

static trastenda_err
parse_one(struct auth *a, const char *s, size_t n, char *err, size_t errlen)
{
    const char *colon = memchr(s, ':', n);
    if (colon == NULL) return bad(err, errlen, "tokens: expected name:secret", "");
    size_t nl = (size_t)(colon - s), sl = n - nl - 1;
    if (!name_ok(s, nl))
        return bad(err, errlen, "tokens: a name must be 1..64 letters, digits or -_.@", "");
    if (sl < AUTH_SECRET_BYTES_MIN || sl > AUTH_SECRET_BYTES_MAX)
        return bad(err, errlen, "tokens: a secret must be 16..256 bytes", "");
    if (a->n == AUTH_TOKENS_MAX) return bad(err, errlen, "tokens: at most 16", "");
    for (uint32_t k = 0; k < a->n; k++)
        if (a->tokens[k].name_len == nl && memcmp(a->tokens[k].name, s, nl) == 0)
            return bad(err, errlen, "tokens: a name is given twice", "");
    struct auth_token *t = &a->tokens[a->n++];
    memcpy(t->name, s, nl);
    t->name[nl] = '\0';
    t->name_len = (uint32_t)nl;
    memcpy(t->secret, colon + 1, sl);
    t->secret_len = (uint32_t)sl;
    return TRASTENDA_OK;
}

bool
auth_addr_is_local(const char *addr)
{
    if (addr == NULL || addr[0] == '\0') return true; /* not listening */
    if (strncmp(addr, "ipc://", 6) == 0 || strncmp(addr, "inproc://", 9) == 0) return true;
    const char *host = strstr(addr, "://");
    if (host == NULL) return false;
    host += 3;
    static const char *const local[] = {"127.", "localhost:", "[::1]:", "localhost/"};
    for (size_t i = 0; i < sizeof(local) / sizeof(local[0]); i++)
        if (strncmp(host, local[i], strlen(local[i])) == 0) return true;
    return strcmp(host, "localhost") == 0;
}

trastenda_err
auth_init(struct auth *a, const char *tokens, bool open_reads, const char *const *listeners,
          char *err, size_t errlen)
{
    memset(a, 0, sizeof(*a));
    a->open_reads = open_reads;
    for (const char *p = tokens; p != NULL && *p != '\0';) { /* bound: the string */
        const char *comma = strchr(p, ',');
        size_t n = comma != NULL ? (size_t)(comma - p) : strlen(p);
        trastenda_err e = parse_one(a, p, n, err, errlen);
        if (e != TRASTENDA_OK) return e;
        p = comma != NULL ? comma + 1 : p + n;
    }
    for (const char *const *l = listeners; a->n == 0 && *l != NULL; l++)
        if (!auth_addr_is_local(*l)) {
            snprintf(err, errlen,
                     "config: %s listens beyond loopback: set tokens = name:secret "
                     "(docs/SECURITY.md)",
                     *l);
            return TRASTENDA_E_INVALID;
        }
    return TRASTENDA_OK;
}

/* The token whose secret is s, or NULL; looks at every token whatever matches. */
static const struct auth_token *
find(const struct auth *a, const char *s, size_t len)
{
    const struct auth_token *hit = NULL;
    for (uint32_t k = 0; k < a->n; k++) {
        const struct auth_token *t = &a->tokens[k];
        uint8_t diff = (uint8_t)(t->secret_len != len);
        for (size_t i = 0; i < t->secret_len; i++) /* bound: AUTH_SECRET_BYTES_MAX */
            diff |= (uint8_t)(t->secret[i] ^ (uint8_t)(i < len ? s[i] : 0));
        if (diff == 0) hit = t;
    }
    return hit;
}

bool
auth_token_valid(const struct auth *a, const char *token, size_t len)
{
    if (a->n == 0) return true;
    return token != NULL && len > 0 && find(a, token, len) != NULL;
}

bool
auth_read_allowed(const struct auth *a, const char *token, size_t len)
{
    if (a->n == 0 || a->open_reads) return true;
    return token != NULL && len > 0 && find(a, token, len) != NULL;
}

trastenda_err
auth_request(const struct auth *a, struct proto_req *q, char *msg, size_t cap)
{
    if (a->n == 0) return TRASTENDA_OK;
    bool writes = false;
    for (uint32_t i = 0; i < q->n_ops; i++) /* bound: PROTO_OPS_MAX */
        writes |= q->ops[i].err == TRASTENDA_OK && proto_kind_needs_token(q->ops[i].kind);
    const struct auth_token *t = q->token.len > 0 ? find(a, q->token.ptr, q->token.len) : NULL;
    if (t == NULL && (writes || !a->open_reads)) {
        snprintf(msg, cap, "%s: a valid token is needed for %s (docs/SECURITY.md)",
                 q->token.len > 0 ? "token: not valid" : "token: required",
                 writes ? "writes, promote and backup" : "this server's reads");
        return TRASTENDA_E_UNAUTHORIZED;
    }
    if (t == NULL) return TRASTENDA_OK;
    for (uint32_t i = 0; i < q->n_ops; i++) { /* bound: PROTO_OPS_MAX */
        struct proto_op *op = &q->ops[i];
        if (!proto_op_is_command(op)) continue;
        op->actor = (trastenda_str){t->name, t->name_len};
        op->present |= BIT(PFD_ACTOR);
    }
    return TRASTENDA_OK;
}
