/*
 * tests/storage/store_writer.c - ts-store-writer: writes to a store in a process of its own, for
 * the tests that need a process that ends without closing its store (a crash's state on disk).
 *
 * Tests start it with posix_spawn (st_writer in sthelp.h) rather than fork: a Criterion test
 * process has threads of its own, and a forked child that starts threads of its own can deadlock
 * in an allocator lock inherited locked (seen under ASan). exec gives a clean process.
 *
 *   ts-store-writer --dir D [--async] [--seed S --batches N | --receipts N]
 *                   [--materialize-ms M] [--gen-clock] [--crash]
 *
 * --batches: the catalog batch, then N random batches (tests/engine/gen.h) from seed S, one
 * request each; --gen-clock stamps them with the generator's times (TTLs and windows pass).
 * --receipts: the catalog batch, then N receipts of 3 units of s0 at l0. --crash: _exit without
 * close (nothing materialized after open, the log holds everything). Prints "seq digest" of the
 * last state on stdout. Exit 0 ok, 2 usage, 3 open failed, 4 a batch failed.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gen.h"
#include "sthelp.h"

static int64_t gen_now;

static int64_t
gen_clock(void *ctx)
{
    (void)ctx;
    return __atomic_load_n(&gen_now, __ATOMIC_ACQUIRE);
}

int
main(int argc, char **argv)
{
    const char *dir = NULL;
    bool async = false, crash = false, use_gen_clock = false;
    uint64_t seed = 1;
    long batches = -1, receipts = -1;
    uint32_t mat_ms = 3600000;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--async") == 0)
            async = true;
        else if (strcmp(a, "--crash") == 0)
            crash = true;
        else if (strcmp(a, "--gen-clock") == 0)
            use_gen_clock = true;
        else if (v != NULL && strcmp(a, "--dir") == 0 && ++i)
            dir = v;
        else if (v != NULL && strcmp(a, "--seed") == 0 && ++i)
            seed = strtoull(v, NULL, 10);
        else if (v != NULL && strcmp(a, "--batches") == 0 && ++i)
            batches = atol(v);
        else if (v != NULL && strcmp(a, "--receipts") == 0 && ++i)
            receipts = atol(v);
        else if (v != NULL && strcmp(a, "--materialize-ms") == 0 && ++i)
            mat_ms = (uint32_t)strtoul(v, NULL, 10);
        else {
            fprintf(stderr, "ts-store-writer: bad argument %s\n", a);
            return 2;
        }
    }
    if (dir == NULL || (batches < 0) == (receipts < 0)) {
        fprintf(stderr, "ts-store-writer: --dir and one of --batches, --receipts are needed\n");
        return 2;
    }
    trastenda_store_config cfg;
    trastenda_store_config_default(&cfg);
    cfg.dir = dir;
    gen_config(&cfg.engine, false);
    cfg.durability = async ? TRASTENDA_DURABILITY_ASYNC : TRASTENDA_DURABILITY_FSYNC;
    cfg.queue_max = 64;
    cfg.materialize_interval_ms = mat_ms;
    cfg.log = st_log_quiet;
    if (use_gen_clock) cfg.clock_ms = gen_clock;
    trastenda_store *st = NULL;
    char err[512];
    if (trastenda_store_open(&cfg, &st, err, sizeof(err)) != TRASTENDA_OK) {
        fprintf(stderr, "ts-store-writer: open: %s\n", err);
        return 3;
    }
    static struct batch b;
    static trastenda_result res[BATCH_MAX];
    struct gen g = {.rng = {seed}};
    setup_batch(&b);
    long n = batches >= 0 ? batches : 0;
    for (long i = 0; i <= n; i++) {
        if (i > 0) next_batch(&g, &b);
        __atomic_store_n(&gen_now, b.now, __ATOMIC_RELEASE);
        if (st_run(st, b.cmds, b.n, res, NULL) != TRASTENDA_OK) return 4;
        learn(&g, b.g, res, b.n);
    }
    struct gcmd x;
    cmd_stock(&x, TRASTENDA_OP_RECEIVE, 0, 0, 3);
    for (long i = 0; i < receipts; i++)
        if (st_run(st, &x.c, 1, res, NULL) != TRASTENDA_OK || res[0].code != TRASTENDA_OK) return 4;
    uint64_t seq;
    uint64_t digest = st_settled(st, &seq);
    printf("%" PRIu64 " %" PRIu64 "\n", seq, digest);
    fflush(stdout);
    if (crash) _exit(0); /* no close: the log alone must bring everything back */
    trastenda_store_close(st);
    return 0;
}
