/*
 * bench/server_bench.h - what the benchmarks that drive a real `trastenda` process share (the
 * server, HTTP and replication benchmarks): the server binary next to the benchmark's own, a
 * client of one address, waiting until a node answers, and the catalogue they load (one
 * location W1, SKUs S0 .. S<n-1> with stock there).
 *
 * Header-only, after bench/common.h (which needs BENCH_NAME).
 */
#ifndef TRASTENDA_BENCH_SERVER_BENCH_H
#define TRASTENDA_BENCH_SERVER_BENCH_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"
#include "trastenda/client.h"

#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#endif

/* The path of the binary `name` in the directory of `self` (argv[0]). */
static void
sb_sibling(const char *self, const char *name, char *out, size_t cap)
{
    const char *slash = strrchr(self, '/');
    if (slash == NULL)
        snprintf(out, cap, "%s", name);
    else
        snprintf(out, cap, "%.*s/%s", (int)(slash - self), self, name);
}

/* A client of one node with this call timeout; dies when it cannot be made. */
static trastenda_client *
sb_client_timeout(const char *addr, uint32_t in_flight, uint32_t timeout_ms)
{
    const char *nodes[] = {addr};
    trastenda_client_config cfg;
    trastenda_client_config_default(&cfg);
    cfg.nodes = nodes;
    cfg.n_nodes = 1;
    cfg.timeout_ms = timeout_ms;
    cfg.batch_max = 1024;
    cfg.in_flight = in_flight;
    trastenda_client *c;
    if (trastenda_client_open(&cfg, &c, NULL, 0) != TRASTENDA_OK) die("client of %s", addr);
    return c;
}

/* A client of one node (calls time out after 30 s); dies when it cannot be made. */
static trastenda_client *
sb_client(const char *addr, uint32_t in_flight)
{
    return sb_client_timeout(addr, in_flight, 30000);
}

/* The last lines of a server's log on stderr: a benchmark removes its folder when it dies. */
static void
sb_log_tail(const char *log)
{
    FILE *f = fopen(log, "r");
    if (f == NULL) return;
    char text[4096];
    if (fseek(f, 0, SEEK_END) == 0 && ftell(f) > (long)sizeof(text) - 1)
        (void)fseek(f, -(long)(sizeof(text) - 1), SEEK_END);
    else
        rewind(f);
    size_t n = fread(text, 1, sizeof(text) - 1, f);
    fclose(f);
    text[n] = '\0';
    const char *from = text;
    int lines = 0;
    for (size_t i = n; i > 0; i--)
        if (text[i - 1] == '\n' && ++lines > 12) {
            from = text + i;
            break;
        }
    fprintf(stderr, "--- the end of %s:\n%s%s---\n", log, from,
            n > 0 && text[n - 1] != '\n' ? "\n" : "");
}

/* Waits until the node at addr answers status: dies naming its log when its process (pid) exits
 * first (its last lines shown), or after 120 s (tables of many millions of entries take seconds
 * to create). */
static void
sb_wait(const char *addr, pid_t pid, const char *log)
{
    trastenda_client *c = sb_client_timeout(addr, 1, 500);
    uint64_t deadline = now_ns() + 120000000000ull;
    while (now_ns() < deadline) {
        trastenda_reply r;
        memset(&r, 0, sizeof(r));
        bool up = trastenda_status(c, &r) == TRASTENDA_OK && r.code == 0;
        trastenda_reply_clear(&r);
        if (up) {
            trastenda_client_close(c);
            return;
        }
        if (waitpid(pid, NULL, WNOHANG) == pid) {
            sb_log_tail(log);
            die("the server exited at start (%s)", log);
        }
        usleep(50000);
    }
    sb_log_tail(log);
    die("the server did not answer within 120 s (%s)", log);
}

/* A number field of the node's status ("durable", "materialized": the seq map's), -1 when absent.
 */
static int64_t
sb_status_field(trastenda_client *c, const char *field)
{
    trastenda_reply r;
    memset(&r, 0, sizeof(r));
    int64_t v = -1;
    if (trastenda_status(c, &r) == TRASTENDA_OK && r.code == 0) {
        char *json = trastenda_result_json(&r), key[64];
        snprintf(key, sizeof(key), "\"%s\":", field);
        const char *at = json != NULL ? strstr(json, key) : NULL;
        if (at != NULL) v = strtoll(at + strlen(key), NULL, 10);
        free(json);
    }
    trastenda_reply_clear(&r);
    return v;
}

/* Waits until the node's materializer has written what is durable now (so its start, e.g. the
 * creation of its copy of the tables, is over before a measurement); dies after 120 s. */
static void
sb_wait_materialized(trastenda_client *c, const char *log)
{
    int64_t durable = sb_status_field(c, "durable");
    uint64_t deadline = now_ns() + 120000000000ull;
    while (now_ns() < deadline) {
        if (durable >= 0 && sb_status_field(c, "materialized") >= durable) return;
        usleep(50000);
    }
    die("the server's materializer did not catch up within 120 s (%s)", log);
}

/* Location W1 and SKUs S0 .. S<n_skus-1>, each received at W1 with qty units. */
static void
sb_load(trastenda_client *c, int n_skus, int64_t qty)
{
    static trastenda_args a[1024];
    static trastenda_reply r[1024];
    static char ids[512][16];
    trastenda_args_init(&a[0], "location.upsert");
    a[0].loc = "W1";
    if (trastenda_call_batch(c, a, 1, r) != TRASTENDA_OK || r[0].code != 0)
        die("load: location: %s", r[0].msg);
    trastenda_reply_clear(&r[0]);
    for (int base = 0; base < n_skus; base += 512) {
        uint32_t n = 0;
        for (int k = base; k < base + 512 && k < n_skus; k++) {
            uint32_t j = (uint32_t)(k - base);
            snprintf(ids[j], sizeof(ids[0]), "S%d", k);
            trastenda_args_init(&a[n], "sku.upsert");
            a[n].sku = ids[j];
            n++;
            trastenda_args_init(&a[n], "receive");
            a[n].sku = ids[j];
            a[n].loc = "W1";
            a[n].qty = qty;
            n++;
        }
        if (trastenda_call_batch(c, a, n, r) != TRASTENDA_OK) die("load: no reply");
        for (uint32_t i = 0; i < n; i++) {
            if (r[i].code != 0) die("load: %s", r[i].msg);
            trastenda_reply_clear(&r[i]);
        }
    }
}

#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif
#endif /* TRASTENDA_BENCH_SERVER_BENCH_H */
