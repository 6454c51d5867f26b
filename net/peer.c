/*
 * net/peer.c - asking another node over the client protocol (net/peer.h).
 */
#include <string.h>

#include "peer.h"
#include "trastenda/client.h"

bool
peer_durable_seq(const char *addr, uint32_t timeout_ms, uint64_t *seq)
{
    const char *nodes[1] = {addr};
    trastenda_client_config cc;
    trastenda_client_config_default(&cc);
    cc.nodes = nodes;
    cc.n_nodes = 1;
    cc.timeout_ms = timeout_ms;
    cc.retries = 0;
    trastenda_client *cl;
    char err[200];
    if (trastenda_client_open(&cc, &cl, err, sizeof(err)) != TRASTENDA_OK) return false;
    trastenda_reply rep;
    memset(&rep, 0, sizeof(rep));
    trastenda_err e = trastenda_status(cl, &rep);
    trastenda_client_close(cl);
    bool ok = e == TRASTENDA_OK && rep.code == TRASTENDA_OK;
    if (ok) *seq = rep.seq; /* the envelope's durable sequence */
    trastenda_reply_clear(&rep);
    return ok;
}
