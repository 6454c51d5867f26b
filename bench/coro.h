/*
 * bench/coro.h - benchmark callers as coroutines on a few threads.
 *
 * A load generator with one blocked thread per caller measures the operating system's thread
 * wake-ups as much as the server: on two cores, waking 50 threads costs more CPU than the calls.
 * redis-benchmark and pgbench multiplex their connections on one or a few event-loop threads;
 * these coroutines do the same for Trastenda's callers. Each caller keeps its straight-line code
 * (call, wait for the result, decide the next call): co_call makes an asynchronous call
 * (trastenda_call_async) and switches to the scheduler until its completion makes the caller
 * ready again. The scheduler corks its clients while it runs the ready callers, so their calls
 * leave together (automatic batching, as the shared client does for threads).
 *
 * One scheduler per thread; a caller stays on its scheduler's thread.
 */
#ifndef TRASTENDA_BENCH_CORO_H
#define TRASTENDA_BENCH_CORO_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "trastenda/client.h"

struct co_sched;

/* A scheduler with no callers yet. Dies when out of memory. */
struct co_sched *co_sched_new(void);
/* Corks `cl` while ready callers run (at most 8 clients; more are not corked). */
void co_sched_cork_client(struct co_sched *s, trastenda_client *cl);
/* A caller running fn(arg) on its own stack once co_sched_run starts. */
void co_spawn(struct co_sched *s, void (*fn)(void *arg), void *arg);
/* Runs the callers on the calling thread until every one has returned, then frees the scheduler. */
void co_sched_run(struct co_sched *s);
/* co_sched_run on a new thread (join it); dies when the thread cannot start. */
void co_sched_start(struct co_sched *s, pthread_t *th);

/* True on a caller's stack (inside co_sched_run). */
bool co_inside(void);
/* From a caller: trastenda_call_async of n ops into replies, waiting (as a coroutine) for their
 * completion; returns the call's status as trastenda_call_batch does. */
trastenda_err co_call(trastenda_client *cl, const trastenda_args *args, uint32_t n,
                      trastenda_reply *replies);

/* From a caller: lets the others run for ms milliseconds (a back-off that must not block the
 * thread, as usleep would for every caller on it). */
void co_sleep_ms(uint32_t ms);

#endif /* TRASTENDA_BENCH_CORO_H */
