/*
 * net/peer.h - asking another node over the client protocol (promotion's check of its peers).
 * Its own file: the client's header and the engine's name things alike (trastenda_stock).
 */
#ifndef TRASTENDA_NET_PEER_H
#define TRASTENDA_NET_PEER_H

#include <stdbool.h>
#include <stdint.h>

/* The durable sequence a node at addr reports (status); false when it does not answer in time. */
bool peer_durable_seq(const char *addr, uint32_t timeout_ms, uint64_t *seq);

#endif /* TRASTENDA_NET_PEER_H */
