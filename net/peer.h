/*
 * net/peer.h - asking another node over the client protocol (promotion's check of its peers).
 * Its own file: the client's header and the engine's name things alike (trastenda_stock).
 */
#ifndef TRASTENDA_NET_PEER_H
#define TRASTENDA_NET_PEER_H

#include <stddef.h>
#include <stdint.h>

/* How this node reaches its peers: its replication token (sent with each request: a peer with
 * open-reads = false answers status only to a token holder) and its TLS files for tls+tcp://
 * peers (the CA that signed theirs, its own certificate and key); NULL: none. */
struct peer_access {
    const char *token;
    const char *tls_ca, *tls_cert, *tls_key;
};

enum peer_answer {
    PEER_OK = 0,     /* *seq is the peer's durable sequence */
    PEER_SILENT = 1, /* no answer in time (or it cannot be reached): a dead node */
    PEER_REFUSED = 2 /* it answered with an error, or cannot be asked (why): its position
                      * unknown */
};

/* The durable sequence a node at addr reports (status). */
enum peer_answer peer_durable_seq(const char *addr, const struct peer_access *access,
                                  uint32_t timeout_ms, uint64_t *seq, char *why, size_t whylen);

#endif /* TRASTENDA_NET_PEER_H */
