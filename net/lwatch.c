/*
 * net/lwatch.c - keeps the server's ipc:// listeners taking connections.
 *
 * nng 1.5.2, the version Debian 12 ships, stops an ipc listener for good when a peer disconnects
 * during the SP handshake (nng issue #1518, fixed in nng 1.6.0): the socket then takes no new
 * connection, while those it had go on. A local process that connects and leaves (a port check,
 * a client killed at the wrong moment, a follower whose request timed out while its leader was
 * starting) is enough; tcp:// listeners are not affected. So every LWATCH_PERIOD_MS the watcher
 * dials each watched ipc listener with a socket of the peer protocol and checks that the served
 * socket takes connections (its NNG_PIPE_EV_ADD_PRE count moves). The probe is closed only once
 * its own handshake is over (its NNG_PIPE_EV_ADD_POST): closing it earlier, on a server merely
 * slow, is the very fault. A listener whose socket takes no connection for LWATCH_MISSES rounds
 * of LWATCH_WAIT_MS is closed and opened again on the same address, with a warning in the log;
 * status counts it (counters.listener_restarts). Closing a listener also closes the connections
 * it had taken: their clients reconnect.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sockclose.h"
#include "srv.h" /* lwatch.h, tls_listen_l */

#define LWATCH_PERIOD_MS 2000
#define LWATCH_WAIT_MS   3000
#define LWATCH_MISSES    2

static void
lw_log(const struct lwatch *w, trastenda_log_level level, const char *msg)
{
    if (w->cfg != NULL && w->cfg->log != NULL) w->cfg->log(w->cfg->log_ctx, level, msg);
}

static void
own_cb(nng_pipe p, nng_pipe_ev ev, void *arg)
{
    (void)p;
    if (ev == NNG_PIPE_EV_ADD_PRE) lwatch_pipe_added(arg);
}

void
lwatch_add(struct lwatch *w, nng_socket sock, nng_listener l, const char *addr, const char *what,
           int (*open_peer)(nng_socket *), bool own)
{
    if (strncmp(addr, "ipc://", 6) != 0 || w->n >= LWATCH_MAX) return;
    struct lwatch_item *it = &w->items[w->n++];
    memset(it, 0, sizeof(*it));
    it->sock = sock;
    it->l = l;
    snprintf(it->addr, sizeof(it->addr), "%s", addr);
    it->what = what;
    it->open_peer = open_peer;
    it->own_cb = own;
    if (own) nng_pipe_notify(sock, NNG_PIPE_EV_ADD_PRE, own_cb, it);
}

struct lwatch_item *
lwatch_find(struct lwatch *w, nng_socket sock)
{
    for (uint32_t i = 0; i < w->n; i++)
        if (nng_socket_id(w->items[i].sock) == nng_socket_id(sock)) return &w->items[i];
    return NULL;
}

/* Sleeps ms, or less when stopping. true when stopping. */
static bool
lw_nap(struct lwatch *w, uint32_t ms)
{
    struct timespec until;
    mono_deadline(&until, ms);
    pthread_mutex_lock(&w->mu);
    while (!__atomic_load_n(&w->stop, __ATOMIC_ACQUIRE))
        if (pthread_cond_timedwait(&w->cv, &w->mu, &until) != 0) break;
    pthread_mutex_unlock(&w->mu);
    return __atomic_load_n(&w->stop, __ATOMIC_ACQUIRE) != 0;
}

static void
probe_cb(nng_pipe p, nng_pipe_ev ev, void *arg)
{
    (void)p;
    if (ev == NNG_PIPE_EV_ADD_POST) __atomic_store_n((uint32_t *)arg, 1, __ATOMIC_RELEASE);
}

/* The item's probe, closed (bounded: nng 1.5.2's close may wait on a peer). */
static void
probe_close(struct lwatch_item *it)
{
    if (!it->probing) return;
    (void)sock_close_bounded(it->probe, SOCK_CLOSE_WAIT_MS);
    it->probing = false;
}

/* One round for an item: true when its socket took a connection (the probe's, or anyone's)
 * within LWATCH_WAIT_MS. A probe whose handshake is not over stays open into the next round. */
static bool
lw_round(struct lwatch *w, struct lwatch_item *it)
{
    uint64_t before = __atomic_load_n(&it->added, __ATOMIC_RELAXED);
    if (!it->probing) {
        if (it->open_peer(&it->probe) != 0) return true; /* no probe: nothing learned */
        it->probe_done = 0;
        nng_pipe_notify(it->probe, NNG_PIPE_EV_ADD_POST, probe_cb, &it->probe_done);
        /* Asynchronous: the dial and the handshake go on while this thread watches. */
        if (nng_dial(it->probe, it->addr, NULL, NNG_FLAG_NONBLOCK) != 0) {
            nng_close(it->probe);
            return true;
        }
        it->probing = true;
    }
    bool took = false;
    for (uint32_t t = 0; t < LWATCH_WAIT_MS; t += 20) {
        if (lw_nap(w, 20)) return true;
        took = took || __atomic_load_n(&it->added, __ATOMIC_RELAXED) != before;
        if (took && __atomic_load_n(&it->probe_done, __ATOMIC_ACQUIRE)) break;
    }
    if (__atomic_load_n(&it->probe_done, __ATOMIC_ACQUIRE)) probe_close(it);
    return took;
}

static void
lw_relisten(struct lwatch *w, struct lwatch_item *it)
{
    char msg[LWATCH_ADDR_MAX + 300], err[LWATCH_ADDR_MAX + 200];
    snprintf(msg, sizeof(msg),
             "%s: the listener on %s takes no connection (a peer left during its handshake: "
             "nng 1.5.2's issue #1518): listening again",
             it->what, it->addr);
    lw_log(w, TRASTENDA_LOG_WARN, msg);
    nng_listener_close(it->l);
    nng_listener l;
    if (tls_listen_l(w->cfg, it->sock, it->what, it->addr, &l, err, sizeof(err)) != TRASTENDA_OK) {
        lw_log(w, TRASTENDA_LOG_ERROR, err); /* tried again at the next miss */
        return;
    }
    it->l = l;
    __atomic_fetch_add(&w->restarts, 1, __ATOMIC_RELAXED);
}

static void *
lw_main(void *arg)
{
    struct lwatch *w = arg;
    while (!lw_nap(w, LWATCH_PERIOD_MS)) {
        for (uint32_t i = 0; i < w->n && !__atomic_load_n(&w->stop, __ATOMIC_ACQUIRE); i++) {
            struct lwatch_item *it = &w->items[i];
            if (lw_round(w, it)) {
                it->misses = 0;
                continue;
            }
            if (++it->misses >= LWATCH_MISSES) {
                it->misses = 0;
                lw_relisten(w, it);
                probe_close(it); /* its connection went with the old listener */
            }
        }
    }
    return NULL;
}

void
lwatch_start(struct lwatch *w, const trastenda_server_config *cfg)
{
    w->cfg = cfg;
    if (w->n == 0 || w->running) return;
    pthread_mutex_init(&w->mu, NULL);
    mono_cond_init(&w->cv);
    __atomic_store_n(&w->stop, 0, __ATOMIC_RELEASE);
    if (pthread_create(&w->th, NULL, lw_main, w) != 0) abort();
    w->running = true;
}

void
lwatch_stop(struct lwatch *w)
{
    if (w->running) {
        pthread_mutex_lock(&w->mu);
        __atomic_store_n(&w->stop, 1, __ATOMIC_RELEASE);
        pthread_cond_broadcast(&w->cv);
        pthread_mutex_unlock(&w->mu);
        pthread_join(w->th, NULL);
        pthread_mutex_destroy(&w->mu);
        pthread_cond_destroy(&w->cv);
        w->running = false;
    }
    for (uint32_t i = 0; i < w->n; i++) {
        probe_close(&w->items[i]);
        if (w->items[i].own_cb) nng_pipe_notify(w->items[i].sock, NNG_PIPE_EV_ADD_PRE, NULL, NULL);
    }
    w->n = 0;
}
