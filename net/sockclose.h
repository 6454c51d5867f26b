/*
 * net/sockclose.h - closing an nng socket without hanging the caller. nng 1.5.2 (Debian 12's)
 * can wait forever in nng_close when a message is still arriving on a connection it tears
 * down: the TCP transport re-arms its read on an aio the close already stopped, the read is
 * dropped, and the pipe's reaper waits for it (fixed upstream in nng 1.8, nanomsg/nng#1813).
 * Callers first make their sockets quiet (requests answered, contexts stopped); this bounds
 * what is left of the risk: past the bound the socket is abandoned to a detached thread, with
 * a message, and the caller goes on.
 */
#ifndef TRASTENDA_NET_SOCKCLOSE_H
#define TRASTENDA_NET_SOCKCLOSE_H

#include <nng/nng.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include <pthread.h>

/* How long every close of ours waits for nng_close before leaving it to the background. */
#define SOCK_CLOSE_WAIT_MS 5000u

/* A condition variable timed on CLOCK_MONOTONIC, and a deadline ms from now on that clock. */
void mono_cond_init(pthread_cond_t *cv);
void mono_deadline(struct timespec *ts, uint64_t ms);

/* nng_close(sock), waiting at most wait_ms for it; false when it did not return in time (the
 * close goes on in the background and the socket must not be used again). */
bool sock_close_bounded(nng_socket sock, uint32_t wait_ms);

#endif
