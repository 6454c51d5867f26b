/*
 * bench/harness.h - trastenda-bench as its workloads see it.
 *
 * The harness (harness.c) parses the flags, connects with the public client library, reads the
 * server's status, starts C callers, keeps the clock (a warm-up, then a duration or an operation
 * count), times every call into log-bucketed histograms, counts results by code, reads the
 * server's CPU time from /proc, and reports as text or JSON.
 *
 * A workload (one wl_*.c file) supplies its flags, the names of its kinds of call, a setup run
 * before the clock starts (loading data), one step of a caller (one or more calls through
 * bench_call), and what it checks and reports at the end. Adding a workload is a new wl_*.c
 * file and one line in the WORKLOADS table of harness.c.
 *
 * Design notes:
 * (1) A call is one round trip of one caller: B ops in one request (trastenda_call_batch), or
 *     one op (trastenda_call) when B = 1; from a coroutine caller, the asynchronous form of the
 *     same (co_call). Its latency goes into the histogram of the run and
 *     into the histogram of each kind of op it carried.
 * (2) Only calls that complete while the clock runs are counted: after the warm-up and before
 *     the stop. Setup and final checks use the shared client outside the clock.
 * (3) Each caller owns its histograms and counters; the harness sums them after the callers
 *     are joined, so the timed path shares nothing but the client and one op counter.
 */
#ifndef TRASTENDA_BENCH_HARNESS_H
#define TRASTENDA_BENCH_HARNESS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define BENCH_NAME "trastenda-bench"
#include "common.h"
#include "trastenda/client.h"

/* Kinds of call a workload names (checkout: check, hold; order-intake: place .. ship). */
#define BENCH_KINDS_MAX 4
/* Callers: coroutines on a few threads, or threads of this process (--caller-threads 0). */
#define BENCH_CALLERS_MAX 1024
/* Ops in one call: the protocol's limit on one request (docs/PROTOCOL.md). */
#define BENCH_OPS_MAX 1024
/* Result codes counted one by one: every trastenda_err fits. */
#define BENCH_CODES 64
/* Flag tables of one workload (its own, shared ones such as the catalogue's). */
#define BENCH_FLAG_SETS_MAX 3

enum bench_flag_kind {
    FLAG_U32,
    FLAG_U64,
    FLAG_F64,
    FLAG_STR,
    FLAG_STRS, /* repeatable: dst is a struct bench_strs, at most `max` values */
    FLAG_BOOL  /* no value: present means true */
};

/* The values of a repeatable flag, in the order given (borrowed from argv). */
#define BENCH_STRS_MAX 4
struct bench_strs {
    const char *v[BENCH_STRS_MAX];
    uint32_t n;
};

struct bench_flag {
    const char *name; /* without the leading "--" */
    enum bench_flag_kind kind;
    void *dst;
    double min, max; /* numbers: the accepted range */
    const char *help;
};

struct bench;
struct caller;

struct workload {
    const char *name;
    const char *summary;
    const struct bench_flag *flag_sets[BENCH_FLAG_SETS_MAX]; /* each ends with {0}; NULL after */
    const char *kinds[BENCH_KINDS_MAX];                      /* NULL after the last */
    uint64_t expected_codes; /* results that are outcomes, not errors: bit (1 << code) */
    /* The kinds (bit (1 << index in kinds)) whose ops the measured server answers, for its CPU
     * per op; 0: every kind (replica-reads: the leader's, not the followers' reads). */
    uint32_t server_kinds;
    bool runs_to_end; /* ends by itself (flash-sale): the duration is then a limit */
    /* Checks the workload's options against the run's (bench_usage_error when they do not fit),
     * before anything connects, and returns the most ops one call can carry. */
    uint32_t (*ops_per_call)(const struct bench *b);
    void (*setup)(struct bench *b); /* before the clock: loads data */
    void (*caller_init)(struct bench *b, struct caller *c);
    bool (*step)(struct bench *b, struct caller *c); /* false: this caller is done */
    int (*finish)(struct bench *b);                  /* after the run: checks; the exit code */
    void (*report_text)(const struct bench *b, FILE *f);
    void (*report_json)(const struct bench *b, FILE *f); /* `,"key":value` members */
};

struct bench_opts {
    const char *addr;
    uint32_t callers, batch, in_flight, client_batch_max, timeout_ms, retries, hold_ms;
    uint32_t caller_threads; /* 0: a thread per caller; else coroutines on this many threads */
    double duration_s, warmup_s;
    uint64_t ops; /* stop after this many ops instead of the duration (0: by duration) */
    bool client_per_caller, json;
    uint32_t server_pid; /* 0: from the status reply when the server is on this machine */
    uint64_t seed;
};

struct caller {
    uint32_t id;
    struct bench *b;
    pthread_t th;
    trastenda_client *client; /* the shared one, or this caller's own */
    uint64_t rng;
    trastenda_args *args;     /* ops_per_call of each, for bench_call */
    trastenda_reply *replies; /* their results, valid until bench_replies_clear */
    struct hist all;
    struct hist kind[BENCH_KINDS_MAX];
    uint64_t calls, ops, kind_calls[BENCH_KINDS_MAX], kind_ops[BENCH_KINDS_MAX];
    uint64_t codes[BENCH_CODES];
    bool recorded; /* the last bench_call was counted (design note 2) */
    void *wl;      /* the workload's per-caller state */
};

struct bench {
    struct bench_opts o;
    const struct workload *wl;
    trastenda_client *client; /* shared by the callers (unless one per caller), setup, checks */
    char run_id[16];          /* this run's keys, orders and SKUs differ from earlier runs' */
    uint32_t ops_per_call;
    /* the server, from its status */
    char server_version[32], server_build[16], durability[16];
    int server_pid; /* 0: unknown, or not on this machine */
    char server_pid_note[96];
    /* the clock (design note 2) */
    atomic_bool recording, stop;
    atomic_uint_fast64_t ops_recorded;
    atomic_uint callers_done;
    bool limit_reached; /* a workload that runs to its end hit the duration */
    uint64_t t0_ns, t1_ns;
    int64_t server_cpu0, server_cpu1, self_cpu0, self_cpu1;
    struct caller *callers;
    pthread_t *sched_threads; /* the coroutine callers' threads */
    uint32_t n_sched_threads;
    void *wl_state; /* the workload's shared state */
};

/* ---- for workloads ---- */

/* A flag's value that does not fit: the message, and exit code 2 (before anything connects). */
_Noreturn void bench_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* One call of n ops from c->args (design note 1); `kinds` has bit k for each kind of op in it.
 * The results are in c->replies[0..n) (a transport failure is each result's code). Returns the
 * transport status. */
trastenda_err bench_call(struct caller *c, uint32_t kinds, uint32_t n);
void bench_replies_clear(struct caller *c, uint32_t n);
/* A caller's back-off (after busy): the other callers on its thread keep running meanwhile. */
void bench_pause_ms(struct caller *c, uint32_t ms);

/* A client of the node at `addr` with the run's client options (caller owns; dies when it cannot
 * be opened). */
trastenda_client *bench_client_open(const struct bench *b, const char *addr);

/* 0 .. n-1, from the caller's own generator. */
uint32_t bench_rand_below(struct caller *c, uint32_t n);

/* A unique text id of this run: "<prefix><run>-<caller>-<seq>". */
void bench_id(const struct bench *b, char *out, size_t cap, char prefix, uint32_t caller,
              uint64_t seq);

/* The calling thread keeps a transport or server error's message for the report (rare). */
void bench_note_message(trastenda_err code, const char *msg);
/* The first message kept for a code ("" when none). */
const char *bench_first_message(uint32_t code);

/* Untimed calls on the shared client for setup and checks: n ops, every result must be OK or
 * the program stops with the server's message and `hint`. */
void bench_call_ok(struct bench *b, const trastenda_args *args, uint32_t n, const char *what,
                   const char *hint);

/* Values in a reply's JSON (trastenda_result_json): the sum of every integer under `key`
 * (records of a stock reply), the first string under `key`, how many times `key` appears. */
int64_t bench_json_sum(const char *json, const char *key);
bool bench_json_str(const char *json, const char *key, char *out, size_t cap);
uint32_t bench_json_count(const char *json, const char *key);

/* A JSON string literal. */
void bench_json_print_str(FILE *f, const char *s);

/* Runs fn(arg, index) on `threads` threads over indices 0..n-1 handed out in order (loading,
 * reading back). */
void bench_parallel(uint32_t threads, uint64_t n, void (*fn)(void *arg, uint64_t index), void *arg);

/* Prints the run's report (text, or JSON with --json) on f; returns the ops that succeeded. */
uint64_t bench_report(const struct bench *b, FILE *f);
/* Seconds measured (design note 2). */
double bench_elapsed_s(const struct bench *b);
/* Latency quantiles in microseconds: p50, p90, p99, p99.9, max. */
void bench_quantiles_us(const struct hist *h, double out[5]);

/* ---- the catalogue (catalogue.c): SKUs x locations with stock, for checkout and order-intake */

struct catalogue_opts {
    uint32_t skus, locations;
    uint64_t stock;   /* units received per stock record */
    const char *load; /* auto, no, only */
};

extern struct catalogue_opts catalogue;
extern const struct bench_flag CATALOGUE_FLAGS[];

/* Checks the catalogue's flags (bench_usage_error). */
void catalogue_check(void);
/* Loads what is missing (in batches, from 4 threads); exits 0 after loading with --load only. */
void catalogue_setup(struct bench *b);
void catalogue_sku(char *out, size_t cap, uint32_t index);
void catalogue_location(char *out, size_t cap, uint32_t index);
/* A random ship-to point in peninsular Spain, where the catalogue's locations are. */
void catalogue_ship_to(struct caller *c, int64_t *lat_e6, int64_t *lon_e6);

#define BENCH_CHANNEL "web"

/* ---- the flash sale (wl_flash_sale.c), whole or as the write load of replica-reads ---- */

#define FLASH_SALE_LOCATION "FS-1"
extern const struct bench_flag FLASH_SALE_FLAGS[];

/* The flash-sale workload's functions (struct workload says when each runs). Its writers are
 * callers 0..W-1, W = every caller unless flash_sale_writers_set (before setup) says fewer;
 * their kinds of call are 0 (take) and 1 (confirm). */
uint32_t flash_sale_ops_per_call(const struct bench *b);
void flash_sale_writers_set(const struct bench *b, uint32_t writers);
void flash_sale_setup(struct bench *b);
void flash_sale_caller_init(struct bench *b, struct caller *c);
bool flash_sale_step(struct bench *b, struct caller *c); /* false: sold out or stopped */
int flash_sale_finish(struct bench *b);
void flash_sale_report_text(const struct bench *b, FILE *f);
void flash_sale_report_json(const struct bench *b, FILE *f);
/* The sale's hot SKUs, after setup: how many, and the id of one (borrowed, for the run). */
uint32_t flash_sale_skus(void);
const char *flash_sale_sku(uint32_t index);

#endif /* TRASTENDA_BENCH_HARNESS_H */
