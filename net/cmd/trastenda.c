/*
 * net/cmd/trastenda.c - the `trastenda` server binary: flags and config file, signals, run.
 *
 *   trastenda [--config FILE] [--listen ADDR] [--events ADDR|none] [--http URL|none] [--data DIR]
 *             [--durability fsync|async] [--log-level error|warn|info|debug] [...]
 *
 * Every flag is also a config file key (the same name without "--"): `key = value` lines,
 * '#' comments. Flags given on the command line win over the file. SIGINT and SIGTERM stop the
 * server gracefully (requests in flight are finished, made durable and answered).
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "trastenda/server.h"

enum kind {
    K_STR,
    K_U32,
    K_I64,
    K_U64,
    K_DUR,
    K_LEVEL,
    K_BOOL,
    K_CLIENT_AUTH
};

struct opt {
    const char *name;
    enum kind kind;
    void *dst;
    const char *help;
};

static trastenda_server_config cfg;
static const char *config_file;
static bool huge_pages;
static const char *cpus;

static struct opt opts[] = {
    {"listen", K_STR, &cfg.listen, "requests address (tcp:// or ipc://)"},
    {"events", K_STR, &cfg.events, "events PUB address, or none"},
    {"http", K_STR, &cfg.http, "HTTP/JSON API, metrics, dashboard (http:// or https://), or none"},
    {"http-contexts", K_U32, &cfg.http_contexts, "HTTP requests served at once (more get 503)"},
    {"http-body-max", K_U32, &cfg.http_body_max, "bytes of an HTTP request body (more get 413)"},
    {"tls-cert", K_STR, &cfg.tls_cert, "PEM certificate (chain) of tls+tcp:// and https://"},
    {"tls-key", K_STR, &cfg.tls_key, "PEM private key of tls-cert"},
    {"tls-ca", K_STR, &cfg.tls_ca, "PEM CAs of client certificates (mutual TLS)"},
    {"tls-client-auth", K_CLIENT_AUTH, &cfg.tls_client_auth, "none (default), optional, required"},
    {"tokens", K_STR, &cfg.tokens, "name:secret[,...]: writes need one (docs/SECURITY.md)"},
    {"open-reads", K_BOOL, &cfg.open_reads, "true (default): reads need no token"},
    {"ready-max-lag", K_U32, &cfg.ready_max_lag,
     "a follower's /ready: at most this many entries behind (1000; 0: any)"},
    {"data", K_STR, &cfg.store.dir, "data directory"},
    {"durability", K_DUR, &cfg.store.durability, "fsync (default) or async"},
    {"log-level", K_LEVEL, &cfg.log_level, "error, warn, info (default) or debug"},
    {"contexts", K_U32, &cfg.contexts, "requests served at once"},
    {"max-connections", K_U32, &cfg.max_connections, "connections (more are closed)"},
    {"max-in-flight-per-connection", K_U32, &cfg.max_in_flight_per_connection,
     "requests in flight on one connection (more get busy)"},
    {"reply-timeout-ms", K_U32, &cfg.reply_timeout_ms,
     "a connection that does not take a reply within this is closed (5000; 0: never)"},
    {"queue-max", K_U32, &cfg.store.queue_max, "requests waiting for the engine (power of 2)"},
    {"materialize-interval-ms", K_U32, &cfg.store.materialize_interval_ms,
     "state written at most this often (1000)"},
    {"materialize-interval-max-ms", K_U32, &cfg.store.materialize_interval_max_ms,
     "and at least this often (0: 10 x the above)"},
    {"page-slots", K_U32, &cfg.store.engine.page_slots,
     "records a page of the state holds (power of 2, 1..65536; 256)"},
    {"log-retention-ms", K_I64, &cfg.store.log_retention_ms, "log kept behind the state"},
    {"log-retention-bytes", K_U64, &cfg.store.log_retention_bytes, "and at most this much"},
    {"log-follower-max-bytes", K_U64, &cfg.store.log_follower_bytes_max,
     "log kept for a lagging follower, at most (then it bootstraps)"},
    {"ledger-retention-ms", K_I64, &cfg.store.ledger_retention_ms, "ledger history (0: all)"},
    {"locations-max", K_U32, &cfg.store.engine.locations_max, "locations"},
    {"skus-max", K_U32, &cfg.store.engine.skus_max, "SKUs"},
    {"stock-max", K_U32, &cfg.store.engine.stock_max, "stock records (SKU x location)"},
    {"holds-max", K_U32, &cfg.store.engine.holds_max, "holds in memory"},
    {"orders-max", K_U32, &cfg.store.engine.orders_max, "orders in memory"},
    {"pos-max", K_U32, &cfg.store.engine.pos_max, "purchase orders"},
    {"keys-max", K_U32, &cfg.store.engine.keys_max, "idempotency keys in memory"},
    {"lines-max", K_U32, &cfg.store.engine.lines_max, "hold, order and PO lines"},
    {"batch-max", K_U32, &cfg.store.engine.batch_cmds_max, "commands per engine batch"},
    {"cpus", K_STR, &cpus,
     "CPUs the server's threads run on, as 0 or 0-3,6 (default: all; docs/BENCHMARKS.md)"},
    {"huge-pages", K_BOOL, &huge_pages,
     "false (default); true: tables on transparent huge pages (docs/ENGINE.md)"},
    {"hold-retention-ms", K_I64, &cfg.store.engine.hold_retention_ms, "resolved holds kept"},
    {"order-retention-ms", K_I64, &cfg.store.engine.order_retention_ms, "finished orders kept"},
    {"key-retention-ms", K_I64, &cfg.store.engine.key_retention_ms, "idempotency window"},
    {"repl", K_STR, &cfg.repl, "replication endpoint (default tcp://127.0.0.1:7880), or none"},
    {"follow", K_STR, &cfg.follow, "start as a follower of this leader replication address"},
    {"repl-token", K_STR, &cfg.repl_token,
     "a follower's token for its leader's replication endpoint"},
    {"advertise", K_STR, &cfg.advertise, "request address told to peers (default: listen)"},
    {"advertise-repl", K_STR, &cfg.advertise_repl, "replication address told to peers"},
    {"sync-replicas", K_U32, &cfg.store.sync_replicas,
     "writes wait until this many followers have them (default 0)"},
    {"sync-timeout-ms", K_U32, &cfg.store.sync_timeout_ms,
     "then fail with not_replicated (default 5000)"},
    {"repl-wait-ms", K_U32, &cfg.repl_wait_ms, "a caught-up follower's fetch waits (500)"},
    {"digest-interval-ms", K_U32, &cfg.digest_interval_ms, "anti-entropy digests (10000)"},
    {"min-seq-timeout-ms", K_U32, &cfg.min_seq_timeout_ms, "reads wait for min_seq (2000)"},
    {"test-not-leader", K_STR, &cfg.not_leader, "(tests) refuse writes naming this leader"},
};

static void
usage(FILE *f)
{
    fprintf(f, "usage: trastenda [--config FILE] [--KEY VALUE ...]\n\nkeys (defaults):\n");
    for (size_t i = 0; i < sizeof(opts) / sizeof(opts[0]); i++)
        fprintf(f, "  --%-26s %s\n", opts[i].name, opts[i].help);
    fprintf(f, "\n  defaults: listen %s, events %s, http %s, data ./var/trastenda, fsync\n",
            TRASTENDA_DEFAULT_LISTEN, TRASTENDA_DEFAULT_EVENTS, TRASTENDA_DEFAULT_HTTP);
}

/* Sets one option from its text; a message on stderr and false when the value is bad. */
static bool
set_opt(const char *name, const char *val, const char *where)
{
    for (size_t i = 0; i < sizeof(opts) / sizeof(opts[0]); i++) {
        struct opt *o = &opts[i];
        if (strcmp(o->name, name) != 0) continue;
        char *end = NULL;
        errno = 0;
        switch (o->kind) {
        case K_STR:
            if ((strcmp(name, "events") == 0 || strcmp(name, "repl") == 0 ||
                 strcmp(name, "http") == 0) &&
                strcmp(val, "none") == 0)
                *(const char **)o->dst = "";
            else
                *(const char **)o->dst = strdup(val);
            return true;
        case K_U32: {
            unsigned long v = strtoul(val, &end, 10);
            if (errno != 0 || *end != '\0' || end == val || v > UINT32_MAX || val[0] == '-') break;
            *(uint32_t *)o->dst = (uint32_t)v;
            return true;
        }
        case K_U64: {
            unsigned long long v = strtoull(val, &end, 10);
            if (errno != 0 || *end != '\0' || end == val || val[0] == '-') break;
            *(uint64_t *)o->dst = v;
            return true;
        }
        case K_I64: {
            long long v = strtoll(val, &end, 10);
            if (errno != 0 || *end != '\0' || end == val) break;
            *(int64_t *)o->dst = v;
            return true;
        }
        case K_DUR:
            if (strcmp(val, "fsync") == 0)
                *(trastenda_durability *)o->dst = TRASTENDA_DURABILITY_FSYNC;
            else if (strcmp(val, "async") == 0)
                *(trastenda_durability *)o->dst = TRASTENDA_DURABILITY_ASYNC;
            else
                break;
            return true;
        case K_BOOL:
            if (strcmp(val, "true") != 0 && strcmp(val, "false") != 0) break;
            *(bool *)o->dst = strcmp(val, "true") == 0;
            return true;
        case K_CLIENT_AUTH: {
            static const char *const ca[] = {"none", "optional", "required"};
            for (int l = 0; l < 3; l++)
                if (strcmp(val, ca[l]) == 0) {
                    *(trastenda_tls_client_auth *)o->dst = (trastenda_tls_client_auth)l;
                    return true;
                }
            break;
        }
        case K_LEVEL: {
            static const char *const lv[] = {"error", "warn", "info", "debug"};
            for (int l = 0; l < 4; l++)
                if (strcmp(val, lv[l]) == 0) {
                    *(trastenda_log_level *)o->dst = (trastenda_log_level)l;
                    return true;
                }
            break;
        }
        }
        fprintf(stderr, "trastenda: %s: bad value '%s' for %s\n", where, val, name);
        return false;
    }
    fprintf(stderr, "trastenda: %s: unknown key '%s' (see --help)\n", where, name);
    return false;
}

static char *
trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    char *e = s + strlen(s);
    while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' || e[-1] == '\r'))
        *--e = '\0';
    return s;
}

static bool
load_config(const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        fprintf(stderr, "trastenda: cannot read config %s: %s\n", path, strerror(errno));
        return false;
    }
    char line[4096], where[4200];
    int n = 0;
    bool ok = true;
    while (ok && fgets(line, sizeof(line), f) != NULL) {
        n++;
        char *hash = strchr(line, '#');
        if (hash != NULL) *hash = '\0';
        char *t = trim(line);
        if (*t == '\0') continue;
        char *eq = strchr(t, '=');
        snprintf(where, sizeof(where), "%s:%d", path, n);
        if (eq == NULL) {
            fprintf(stderr, "trastenda: %s: expected key = value\n", where);
            ok = false;
            break;
        }
        *eq = '\0';
        ok = set_opt(trim(t), trim(eq + 1), where);
    }
    fclose(f);
    return ok;
}

/*
 * --cpus: the process's CPU affinity, taken before any thread starts (they inherit it). A list
 * of CPU numbers and ranges ("0", "0-3,6"); every CPU must exist. false with a message otherwise.
 */
static bool
cpus_apply(const char *list, char *err, size_t errlen)
{
    long online = sysconf(_SC_NPROCESSORS_CONF);
    if (online < 1 || online > CPU_SETSIZE) online = CPU_SETSIZE;
    cpu_set_t set;
    CPU_ZERO(&set);
    const char *p = list;
    for (;;) {
        char *end;
        errno = 0;
        if (*p < '0' || *p > '9') break;
        long lo = strtol(p, &end, 10), hi = lo;
        if (errno != 0) break;
        p = end;
        if (*p == '-') {
            if (p[1] < '0' || p[1] > '9') break;
            hi = strtol(p + 1, &end, 10);
            if (errno != 0) break;
            p = end;
        }
        if (hi < lo) {
            snprintf(err, errlen, "cpus: range %ld-%ld is reversed", lo, hi);
            return false;
        }
        if (hi >= online) {
            snprintf(err, errlen, "cpus: CPU %ld does not exist (this machine has %ld: 0-%ld)", hi,
                     online, online - 1);
            return false;
        }
        for (long c = lo; c <= hi; c++)
            CPU_SET((int)c, &set);
        if (*p == '\0') {
            if (sched_setaffinity(0, sizeof(set), &set) != 0) {
                snprintf(err, errlen, "cpus: cannot run on '%s': %s", list, strerror(errno));
                return false;
            }
            return true;
        }
        if (*p != ',') break;
        p++;
    }
    snprintf(err, errlen, "cpus: bad list '%s': expected CPU numbers or ranges such as 0 or 0-3,6",
             list);
    return false;
}

/* The process's own lines, with a timestamp and level as the server's. */
static void mlog(trastenda_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
mlog(trastenda_log_level level, const char *fmt, ...)
{
    char msg[1400];
    int n = snprintf(msg, sizeof(msg), "trastenda: ");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg + n, sizeof(msg) - (size_t)n, fmt, ap);
    va_end(ap);
    trastenda_log_stderr(NULL, level, msg);
}

int
main(int argc, char **argv)
{
    trastenda_server_config_default(&cfg);
    /* The config file first, then the flags over it. */
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        }
        if (strcmp(argv[i], "--version") == 0) {
            printf("trastenda %s\n", TRASTENDA_VERSION_STRING);
            return 0;
        }
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) config_file = argv[i + 1];
    }
    if (config_file != NULL && !load_config(config_file)) return 2;
    for (int i = 1; i < argc; i += 2) { /* --KEY VALUE pairs */
        if (strncmp(argv[i], "--", 2) != 0 || i + 1 >= argc) {
            fprintf(stderr, "trastenda: expected --KEY VALUE, got '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
        if (strcmp(argv[i], "--config") != 0 && !set_opt(argv[i] + 2, argv[i + 1], "flags"))
            return 2;
    }
    /* Signals are taken by this thread only (sigwait): block them before threads start. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    cfg.store.engine.huge_pages = huge_pages;
    trastenda_server *s = NULL;
    char err[1024];
    if (cpus != NULL && !cpus_apply(cpus, err, sizeof(err))) {
        fprintf(stderr, "trastenda: %s\n", err);
        return 2;
    }
    trastenda_err code = trastenda_server_start(&cfg, &s, err, sizeof(err));
    if (code == TRASTENDA_E_CONNECT) {
        /* A follower whose pending bootstrap finds no leader: it waits for one (below). */
        mlog(TRASTENDA_LOG_WARN, "cannot start yet: %s; retrying every second", err);
        s = NULL;
    } else if (code != TRASTENDA_OK) {
        mlog(TRASTENDA_LOG_ERROR, "cannot start: %s (%s)", err, trastenda_err_name(code));
        return code == TRASTENDA_E_INVALID ? 2 : 1;
    }
    int sig = 0;
    for (;;) {
        struct timespec tick = {0, 100 * 1000000};
        sig = sigtimedwait(&set, NULL, &tick);
        if (sig == SIGINT || sig == SIGTERM) break;
        if (s != NULL && trastenda_server_failed(s)) {
            /* Its tables may be ahead of its log: it must not answer another read. */
            mlog(TRASTENDA_LOG_ERROR, "storage failed (above): stopping; exit status 1, for a "
                                      "restart to recover from the log");
            trastenda_server_stop(s);
            return 1;
        }
        if (s == NULL || trastenda_server_wants_restart(s)) {
            /* A follower's bootstrap (the start downloads it), or a leader fenced by a higher
             * epoch (the start asks its peers who leads): stop, and start again. */
            if (s != NULL) {
                mlog(TRASTENDA_LOG_INFO, "restarting the server (a bootstrap, or a fenced leader)");
                trastenda_server_stop(s);
                s = NULL;
            }
            code = trastenda_server_start(&cfg, &s, err, sizeof(err));
            if (code != TRASTENDA_OK) {
                mlog(TRASTENDA_LOG_WARN, "cannot start again: %s (%s); retrying", err,
                     trastenda_err_name(code));
                s = NULL;
                sleep(1);
            }
        }
    }
    mlog(TRASTENDA_LOG_INFO, "%s: stopping", sig == SIGINT ? "SIGINT" : "SIGTERM");
    trastenda_server_stop(s);
    return 0;
}
