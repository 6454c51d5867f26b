/*
 * net/lwatch.h - keeps the server's ipc:// listeners taking connections (net/lwatch.c).
 */
#ifndef TRASTENDA_NET_LWATCH_H
#define TRASTENDA_NET_LWATCH_H

#include <nng/nng.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "trastenda/server.h"

#define LWATCH_MAX      4
#define LWATCH_ADDR_MAX 512

struct lwatch_item {
    nng_socket sock;
    nng_listener l;
    char addr[LWATCH_ADDR_MAX];
    const char *what;               /* "requests", "replication", "events" */
    int (*open_peer)(nng_socket *); /* a socket that may dial it: nng_req0_open, nng_sub0_open */
    bool own_cb;                    /* the watcher counts the socket's new pipes itself */
    uint64_t added;                 /* atomic: pipes the socket took (lwatch_pipe_added) */
    uint32_t misses;
    nng_socket probe; /* the watcher's connection to it, while probing */
    bool probing;
    uint32_t probe_done; /* atomic: the probe's handshake is over */
};

struct lwatch {
    const trastenda_server_config *cfg;
    struct lwatch_item items[LWATCH_MAX];
    uint32_t n;
    uint64_t restarts; /* atomic: listeners closed and opened again */
    uint32_t stop;     /* atomic */
    bool running;
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t cv;
};

/* Watches the listener l of sock on addr, when addr is an ipc:// one (others are left alone).
 * own_cb: the watcher registers its own NNG_PIPE_EV_ADD_PRE callback on sock; otherwise the
 * socket's callback calls lwatch_pipe_added for each ADD_PRE. Before lwatch_start. */
void lwatch_add(struct lwatch *w, nng_socket sock, nng_listener l, const char *addr,
                const char *what, int (*open_peer)(nng_socket *), bool own_cb);
struct lwatch_item *lwatch_find(struct lwatch *w, nng_socket sock);
static inline void
lwatch_pipe_added(struct lwatch_item *it)
{
    if (it != NULL) __atomic_fetch_add(&it->added, 1, __ATOMIC_RELAXED);
}
/* Starts the watcher thread when it has an item; lwatch_stop before any watched socket closes. */
void lwatch_start(struct lwatch *w, const trastenda_server_config *cfg);
void lwatch_stop(struct lwatch *w);

#endif
