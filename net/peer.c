/*
 * net/peer.c - asking another node over the client protocol (net/peer.h).
 */
#include <stdio.h>
#include <string.h>

#include "peer.h"
#include "trastenda/client.h"

enum peer_answer
peer_durable_seq(const char *addr, const struct peer_access *access, uint32_t timeout_ms,
                 uint64_t *seq, char *why, size_t whylen)
{
    const char *nodes[1] = {addr};
    trastenda_client_config cc;
    trastenda_client_config_default(&cc);
    cc.nodes = nodes;
    cc.n_nodes = 1;
    cc.timeout_ms = timeout_ms;
    cc.retries = 0;
    cc.token = access->token;
    cc.tls_ca_file = access->tls_ca;
    cc.tls_cert_file = access->tls_cert;
    cc.tls_key_file = access->tls_key;
    trastenda_client *cl;
    if (trastenda_client_open(&cc, &cl, why, whylen) != TRASTENDA_OK) return PEER_REFUSED;
    trastenda_reply rep;
    memset(&rep, 0, sizeof(rep));
    trastenda_err e = trastenda_status(cl, &rep);
    trastenda_client_close(cl);
    enum peer_answer a = PEER_OK;
    if (e != TRASTENDA_OK) {
        snprintf(why, whylen, "%s", trastenda_err_message(e));
        a = e == TRASTENDA_E_TIMEOUT || e == TRASTENDA_E_CONNECT ? PEER_SILENT : PEER_REFUSED;
    } else if (rep.code != TRASTENDA_OK) {
        snprintf(why, whylen, "%s: %s", trastenda_err_name(rep.code), rep.msg);
        a = PEER_REFUSED;
    } else {
        *seq = rep.seq; /* the envelope's durable sequence */
    }
    trastenda_reply_clear(&rep);
    return a;
}
