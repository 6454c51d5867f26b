/*
 * net/sockclose.c - nng_close bounded in time (see sockclose.h for the nng 1.5.2 defect it
 * guards against). The close runs on a detached thread; the caller waits on a condition with a
 * deadline. The shared state is freed by whichever side is last.
 */
#include "sockclose.h"

#include <pthread.h>
#include <stdlib.h>
#include <time.h>

struct closing {
    nng_socket sock;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool done;
    bool abandoned; /* the caller stopped waiting: the thread frees */
};

void
mono_cond_init(pthread_cond_t *cv)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(cv, &ca);
    pthread_condattr_destroy(&ca);
}

void
mono_deadline(struct timespec *ts, uint64_t ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += (time_t)(ms / 1000);
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

static void
closing_free(struct closing *c)
{
    pthread_cond_destroy(&c->cv);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

static void *
close_main(void *arg)
{
    struct closing *c = arg;
    nng_close(c->sock);
    pthread_mutex_lock(&c->mu);
    c->done = true;
    bool abandoned = c->abandoned;
    pthread_cond_signal(&c->cv);
    pthread_mutex_unlock(&c->mu);
    if (abandoned) closing_free(c);
    return NULL;
}

bool
sock_close_bounded(nng_socket sock, uint32_t wait_ms)
{
    struct closing *c = calloc(1, sizeof(*c));
    if (c == NULL) { /* no memory for the watch: an unbounded close is still a close */
        nng_close(sock);
        return true;
    }
    c->sock = sock;
    pthread_mutex_init(&c->mu, NULL);
    mono_cond_init(&c->cv);
    pthread_t th;
    pthread_attr_t ta;
    pthread_attr_init(&ta);
    pthread_attr_setdetachstate(&ta, PTHREAD_CREATE_DETACHED);
    int rv = pthread_create(&th, &ta, close_main, c);
    pthread_attr_destroy(&ta);
    if (rv != 0) {
        closing_free(c);
        nng_close(sock);
        return true;
    }
    struct timespec until;
    mono_deadline(&until, wait_ms);
    pthread_mutex_lock(&c->mu);
    while (!c->done && pthread_cond_timedwait(&c->cv, &c->mu, &until) == 0)
        ;
    bool done = c->done;
    c->abandoned = !done;
    pthread_mutex_unlock(&c->mu);
    if (done) closing_free(c);
    return done;
}
