/*
 * bench/coro.c - benchmark callers as coroutines on a few threads (bench/coro.h).
 *
 * Callers are ucontext coroutines with their own mmap'ed stacks (a guard page below each).
 * Completions of their asynchronous calls arrive on the client's I/O threads and append the
 * caller to its scheduler's ready list (a mutex and a condition variable: one hand-off per reply,
 * not per call); the scheduler takes the whole list, corks its clients, resumes each caller until
 * it waits again or returns, and uncorks. A caller that sleeps (co_sleep_ms) waits in the
 * scheduler's own list, which bounds the scheduler's wait.
 */
#include "coro.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#define CO_STACK_BYTES (512u << 10)
#define CO_CLIENTS_MAX 8

struct co {
    ucontext_t ctx;
    struct co_sched *s;
    void (*fn)(void *arg);
    void *arg;
    uint8_t *map; /* the stack with its guard page */
    size_t map_len;
    bool finished;
    trastenda_err status; /* of the pending co_call */
    int64_t wake_ns;      /* co_sleep_ms: when it is ready again */
    struct co *next;      /* in the ready list or the sleepers */
};

struct co_sched {
    ucontext_t main;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct co *head, *tail; /* ready, in order */
    bool sleeping;
    uint32_t live;
    trastenda_client *clients[CO_CLIENTS_MAX];
    uint32_t n_clients;
    struct co *sleepers; /* the scheduler thread's own: no lock */
};

static int64_t
mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static __thread struct co *tl_current;

static void
co_die(const char *what)
{
    fprintf(stderr, "bench coroutines: %s\n", what);
    exit(1);
}

struct co_sched *
co_sched_new(void)
{
    struct co_sched *s = calloc(1, sizeof(*s));
    if (s == NULL) co_die("out of memory");
    pthread_mutex_init(&s->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->cv, &ca);
    pthread_condattr_destroy(&ca);
    return s;
}

void
co_sched_cork_client(struct co_sched *s, trastenda_client *cl)
{
    for (uint32_t i = 0; i < s->n_clients; i++)
        if (s->clients[i] == cl) return;
    if (s->n_clients < CO_CLIENTS_MAX) s->clients[s->n_clients++] = cl;
}

/* Appends c to the ready list (any thread). */
static void
co_ready(struct co *c)
{
    struct co_sched *s = c->s;
    pthread_mutex_lock(&s->mu);
    c->next = NULL;
    if (s->tail != NULL)
        s->tail->next = c;
    else
        s->head = c;
    s->tail = c;
    bool wake = s->sleeping;
    pthread_mutex_unlock(&s->mu);
    if (wake) pthread_cond_signal(&s->cv);
}

static void
co_entry(void)
{
    struct co *c = tl_current;
    c->fn(c->arg);
    c->finished = true; /* returning switches to uc_link: the scheduler */
}

void
co_spawn(struct co_sched *s, void (*fn)(void *arg), void *arg)
{
    struct co *c = calloc(1, sizeof(*c));
    if (c == NULL) co_die("out of memory");
    long page = sysconf(_SC_PAGESIZE);
    c->map_len = CO_STACK_BYTES + (size_t)page;
    c->map = mmap(NULL, c->map_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK,
                  -1, 0);
    if (c->map == MAP_FAILED) co_die("cannot map a caller's stack");
    if (mprotect(c->map, (size_t)page, PROT_NONE) != 0) co_die("cannot protect a guard page");
    if (getcontext(&c->ctx) != 0) co_die("getcontext failed");
    c->ctx.uc_stack.ss_sp = c->map + page;
    c->ctx.uc_stack.ss_size = CO_STACK_BYTES;
    c->ctx.uc_link = &s->main;
    makecontext(&c->ctx, co_entry, 0);
    c->s = s;
    c->fn = fn;
    c->arg = arg;
    s->live++;
    co_ready(c);
}

void
co_sched_run(struct co_sched *s)
{
    while (s->live > 0) {
        /* Sleepers whose time has come are ready; the next one's time bounds the wait. */
        int64_t now = mono_ns(), next = INT64_MAX;
        for (struct co **pp = &s->sleepers; *pp != NULL;) {
            struct co *c = *pp;
            if (c->wake_ns <= now) {
                *pp = c->next;
                co_ready(c);
                continue;
            }
            if (c->wake_ns < next) next = c->wake_ns;
            pp = &c->next;
        }
        pthread_mutex_lock(&s->mu);
        while (s->head == NULL && mono_ns() < next) {
            s->sleeping = true;
            if (next == INT64_MAX) {
                pthread_cond_wait(&s->cv, &s->mu);
            } else {
                struct timespec ts = {(time_t)(next / 1000000000), (long)(next % 1000000000)};
                pthread_cond_timedwait(&s->cv, &s->mu, &ts);
            }
        }
        s->sleeping = false;
        struct co *list = s->head;
        s->head = s->tail = NULL;
        pthread_mutex_unlock(&s->mu);
        for (uint32_t i = 0; i < s->n_clients; i++)
            trastenda_client_cork(s->clients[i]);
        while (list != NULL) {
            struct co *c = list;
            list = c->next;
            tl_current = c;
            if (swapcontext(&s->main, &c->ctx) != 0) co_die("swapcontext failed");
            tl_current = NULL;
            if (c->finished) {
                munmap(c->map, c->map_len);
                free(c);
                s->live--;
            }
        }
        for (uint32_t i = 0; i < s->n_clients; i++)
            trastenda_client_uncork(s->clients[i]);
    }
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

static void *
co_sched_main(void *arg)
{
    co_sched_run(arg);
    return NULL;
}

void
co_sched_start(struct co_sched *s, pthread_t *th)
{
    if (pthread_create(th, NULL, co_sched_main, s) != 0) co_die("cannot start a caller thread");
}

bool
co_inside(void)
{
    return tl_current != NULL;
}

static void
co_done(void *arg, trastenda_err status)
{
    struct co *c = arg;
    c->status = status;
    co_ready(c);
}

void
co_sleep_ms(uint32_t ms)
{
    struct co *c = tl_current;
    if (c == NULL) co_die("co_sleep_ms outside a caller");
    c->wake_ns = mono_ns() + (int64_t)ms * 1000000;
    c->next = c->s->sleepers;
    c->s->sleepers = c;
    if (swapcontext(&c->ctx, &c->s->main) != 0) co_die("swapcontext failed");
}

trastenda_err
co_call(trastenda_client *cl, const trastenda_args *args, uint32_t n, trastenda_reply *replies)
{
    struct co *c = tl_current;
    if (c == NULL) co_die("co_call outside a caller");
    trastenda_err e = trastenda_call_async(cl, args, n, replies, co_done, c);
    if (e != TRASTENDA_OK) return e;
    /* Back to the scheduler; the completion puts this caller on the ready list, and the
     * scheduler resumes it only after this switch has saved its context (same thread). */
    if (swapcontext(&c->ctx, &c->s->main) != 0) co_die("swapcontext failed");
    return c->status;
}
