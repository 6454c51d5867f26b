/*
 * tests/storage/test_store_files.c - what a data directory may hold, checkpoints, verification.
 *
 * A foreign database, a directory of other files, a newer or older format, a missing log, an
 * unusable path: each is refused at open with a clear code and message, and nothing starts with
 * partial data. A checkpoint taken while batches are being written opens as exactly the state at
 * its sequence, and verify finds it consistent; verify refuses a damaged or gapped log.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <inttypes.h>
#include <pthread.h>
#include <rocksdb/c.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "gen.h"
#include "sthelp.h"
#include "trastenda/log.h"

static void
config(trastenda_store_config *cfg, const char *dir)
{
    trastenda_store_config_default(cfg);
    cfg->dir = dir;
    gen_config(&cfg->engine, false);
    cfg->queue_max = 64;
    cfg->materialize_interval_ms = 2;
    cfg->log = st_log_quiet;
}

static trastenda_err
try_open(const char *dir, char *err, size_t errlen)
{
    trastenda_store_config cfg;
    config(&cfg, dir);
    trastenda_store *st = NULL;
    trastenda_err code = trastenda_store_open(&cfg, &st, err, errlen);
    if (code == TRASTENDA_OK) trastenda_store_close(st);
    cr_assert((code == TRASTENDA_OK) == (st != NULL));
    return code;
}

/* A raw RocksDB database at path with one key. */
static void
raw_put(const char *path, const char *key, const void *val, size_t len)
{
    rocksdb_options_t *o = rocksdb_options_create();
    rocksdb_options_set_create_if_missing(o, 1);
    char *err = NULL;
    rocksdb_t *db = rocksdb_open(o, path, &err);
    cr_assert_null(err, "%s", err);
    rocksdb_writeoptions_t *wo = rocksdb_writeoptions_create();
    rocksdb_put(db, wo, key, strlen(key), val, len, &err);
    cr_assert_null(err);
    rocksdb_writeoptions_destroy(wo);
    rocksdb_close(db);
    rocksdb_options_destroy(o);
}

Test(store_files, another_programs_database_is_refused)
{
    char dir[512], path[600], err[512];
    st_tmpdir(dir, sizeof(dir), "foreign");
    snprintf(path, sizeof(path), "%s/log", dir);
    raw_put(path, "user:1", "alice", 5);
    cr_assert_eq(try_open(dir, err, sizeof(err)), TRASTENDA_E_CORRUPT);
    cr_assert(strstr(err, "another program") != NULL, "message: %s", err);
    st_rmdir(dir);
}

Test(store_files, a_directory_of_other_files_is_refused)
{
    char dir[512], path[600], err[512];
    st_tmpdir(dir, sizeof(dir), "files");
    snprintf(path, sizeof(path), "%s/state", dir);
    cr_assert_eq(mkdir(path, 0755), 0);
    snprintf(path, sizeof(path), "%s/state/notes.txt", dir);
    FILE *f = fopen(path, "w");
    fputs("not a database\n", f);
    fclose(f);
    cr_assert_eq(try_open(dir, err, sizeof(err)), TRASTENDA_E_CORRUPT);
    cr_assert(strstr(err, "no RocksDB database") != NULL, "message: %s", err);
    st_rmdir(dir);
}

Test(store_files, a_newer_format_is_refused_with_a_message)
{
    char dir[512], path[600], err[512];
    st_tmpdir(dir, sizeof(dir), "newer");
    cr_assert_eq(try_open(dir, err, sizeof(err)), TRASTENDA_OK);
    snprintf(path, sizeof(path), "%s/state", dir);
    const uint8_t rec[7] = {'T', 'S', 'D', 'B', 2, 9, 0}; /* state, version 9 */
    raw_put(path, "F", rec, sizeof(rec));
    cr_assert_eq(try_open(dir, err, sizeof(err)), TRASTENDA_E_CORRUPT);
    cr_assert(strstr(err, "version 9") != NULL && strstr(err, "newer") != NULL, "message: %s", err);
    st_rmdir(dir);
}

/* Format 1 held log entries of format 1, which this build no longer reads (docs/STORAGE.md). */
Test(store_files, an_older_format_is_refused_with_a_message)
{
    char dir[512], path[600], err[512];
    st_tmpdir(dir, sizeof(dir), "older");
    cr_assert_eq(try_open(dir, err, sizeof(err)), TRASTENDA_OK);
    snprintf(path, sizeof(path), "%s/log", dir);
    const uint8_t rec[7] = {'T', 'S', 'D', 'B', 1, 1, 0}; /* log, version 1 */
    raw_put(path, "F", rec, sizeof(rec));
    cr_assert_eq(try_open(dir, err, sizeof(err)), TRASTENDA_E_CORRUPT);
    cr_assert(strstr(err, "version 1") != NULL && strstr(err, "no longer reads") != NULL,
              "message: %s", err);
    st_rmdir(dir);
}

/* A leader of another build may write another log format: the entry is refused, naming the
 * format its header gives (repl.c says so in the follower's log). */
Test(store_files, an_entry_of_another_log_format_is_refused_naming_it)
{
    char dir[512], dir2[600], err[512];
    st_tmpdir(dir, sizeof(dir), "fmt-leader");
    snprintf(dir2, sizeof(dir2), "%s-follower", dir);
    trastenda_store_config cfg;
    config(&cfg, dir);
    trastenda_store *lead = NULL, *fol = NULL;
    cr_assert_eq(trastenda_store_open(&cfg, &lead, err, sizeof(err)), TRASTENDA_OK, "%s", err);
    static struct batch b;
    static trastenda_result res[BATCH_MAX];
    setup_batch(&b);
    cr_assert_eq(st_run(lead, b.cmds, b.n, res, NULL), TRASTENDA_OK);
    static struct st_entry f;
    uint64_t next;
    cr_assert_eq(trastenda_store_log_scan(lead, 1, 1, st_keep_entry, &f, &next), TRASTENDA_OK);
    cr_assert_gt(f.len, (size_t)TRASTENDA_LOG_HEADER_BYTES);
    trastenda_store_close(lead);
    config(&cfg, dir2);
    cfg.follower = true;
    cr_assert_eq(trastenda_store_open(&cfg, &fol, err, sizeof(err)), TRASTENDA_OK, "%s", err);
    f.buf[4] = 1; /* format 1 */
    trastenda_request r = st_follow_one(fol, f.buf, f.len);
    cr_assert_eq(r.entries_applied, 0);
    cr_assert_eq(r.entry_err, TRASTENDA_E_CORRUPT);
    cr_assert_eq(r.entry_version, 1);
    f.buf[4] = TRASTENDA_LOG_VERSION;
    r = st_follow_one(fol, f.buf, f.len);
    cr_assert_eq(r.entries_applied, 1, "%s", trastenda_err_name(r.entry_err));
    cr_assert_eq(r.entry_err, TRASTENDA_OK);
    trastenda_store_close(fol);
    st_rmdir(dir);
    st_rmdir(dir2);
}

Test(store_files, a_missing_log_with_a_state_is_refused)
{
    char dir[512], path[600], err[512];
    st_tmpdir(dir, sizeof(dir), "nolog");
    trastenda_store_config cfg;
    config(&cfg, dir);
    trastenda_store *st = NULL;
    cr_assert_eq(trastenda_store_open(&cfg, &st, err, sizeof(err)), TRASTENDA_OK);
    trastenda_cmd c;
    memset(&c, 0, sizeof(c));
    c.op = TRASTENDA_OP_NOOP;
    trastenda_result r;
    cr_assert_eq(st_run(st, &c, 1, &r, NULL), TRASTENDA_OK);
    trastenda_store_close(st); /* writes the state */
    snprintf(path, sizeof(path), "%s/log", dir);
    st_rmdir(path);
    cr_assert_eq(try_open(dir, err, sizeof(err)), TRASTENDA_E_CORRUPT);
    cr_assert(strstr(err, "log database is missing") != NULL, "message: %s", err);
    st_rmdir(dir);
}

Test(store_files, an_unusable_path_is_an_io_error)
{
    char dir[512], path[600], err[512];
    st_tmpdir(dir, sizeof(dir), "badpath");
    snprintf(path, sizeof(path), "%s/file", dir);
    FILE *f = fopen(path, "w");
    fclose(f);
    snprintf(path, sizeof(path), "%s/file/data", dir);
    cr_assert_eq(try_open(path, err, sizeof(err)), TRASTENDA_E_IO);
    cr_assert(strstr(err, "cannot create") != NULL, "message: %s", err);
    trastenda_store_config cfg;
    config(&cfg, dir);
    cfg.queue_max = 1000; /* not a power of two */
    trastenda_store *st = NULL;
    cr_assert_eq(trastenda_store_open(&cfg, &st, err, sizeof(err)), TRASTENDA_E_INVALID);
    cr_assert(strstr(err, "queue_max") != NULL, "message: %s", err);
    st_rmdir(dir);
}

/* ---- checkpoints ---- */

#define CP_BATCHES 300
#define CP_SEQS    4096

static uint64_t digests[CP_SEQS]; /* digest after each sequence (0: unseen) */

static int64_t
fixed_clock(void *ctx)
{
    (void)ctx;
    return INT64_C(1700000000000); /* time stands still: every batch is one of ours */
}

struct cp_job {
    trastenda_store *st;
    char dir[600];
    uint64_t seq;
    trastenda_err code;
    char err[512];
};

static void *
cp_thread(void *arg)
{
    struct cp_job *j = arg;
    usleep(20000);
    j->code = trastenda_store_checkpoint(j->st, j->dir, &j->seq, j->err, sizeof(j->err));
    return NULL;
}

Test(store_files, a_checkpoint_under_load_is_the_state_at_its_sequence)
{
    char dir[512], err[512];
    st_tmpdir(dir, sizeof(dir), "cp");
    trastenda_store_config cfg;
    config(&cfg, dir);
    cfg.clock_ms = fixed_clock;
    trastenda_store *st = NULL;
    cr_assert_eq(trastenda_store_open(&cfg, &st, err, sizeof(err)), TRASTENDA_OK, "%s", err);
    struct cp_job job = {.st = st};
    snprintf(job.dir, sizeof(job.dir), "%s/backup", dir);
    static struct batch b;
    static trastenda_result res[BATCH_MAX];
    struct gen g = {.rng = {77}};
    pthread_t th;
    setup_batch(&b);
    for (uint32_t i = 0; i <= CP_BATCHES; i++) {
        if (i > 0) next_batch(&g, &b);
        uint64_t seq = 0;
        cr_assert_eq(st_run(st, b.cmds, b.n, res, &seq), TRASTENDA_OK);
        learn(&g, b.g, res, b.n);
        cr_assert_lt(seq, CP_SEQS);
        cr_assert_eq(seq, i + 1, "no other batch ran: time stands still");
        digests[seq] = st_digest(st);
        if (i == 50) pthread_create(&th, NULL, cp_thread, &job);
        if (i > 50 && i % 20 == 0) usleep(2000); /* let the materializer write pages */
    }
    pthread_join(th, NULL);
    cr_assert_eq(job.code, TRASTENDA_OK, "checkpoint: %s", job.err);
    cr_assert_gt(job.seq, 50);
    trastenda_store_close(st);
    /* A second checkpoint into a directory that is not empty is refused. */
    /* The copy opens as the state at its sequence. */
    trastenda_verify_report rep;
    cr_assert_eq(trastenda_store_verify(job.dir, &cfg.engine, &rep, err, sizeof(err)), TRASTENDA_OK,
                 "verify: %s", err);
    cr_assert_eq(rep.seq, job.seq);
    cr_assert_eq(rep.digest, digests[job.seq]);
    cr_assert_geq(rep.state_seq + rep.replayed, job.seq);
    trastenda_store_config c2 = cfg;
    c2.dir = job.dir;
    cr_assert_eq(trastenda_store_open(&c2, &st, err, sizeof(err)), TRASTENDA_OK, "%s", err);
    cr_assert_eq(trastenda_store_durable_seq(st), job.seq);
    cr_assert_eq(st_digest(st), digests[job.seq], "the checkpoint is not the state at its seq");
    cr_assert_eq(trastenda_store_checkpoint(st, job.dir, NULL, err, sizeof(err)),
                 TRASTENDA_E_INVALID);
    trastenda_store_close(st);
    st_rmdir(dir);
}

Test(store_files, verify_refuses_a_damaged_or_gapped_log)
{
    char dir[512], path[600], err[512];
    st_tmpdir(dir, sizeof(dir), "verify");
    trastenda_store_config cfg;
    config(&cfg, dir);
    cfg.materialize_interval_ms = 3600000;
    /* Written by a process that ends without close: nothing materialized, all in the log. */
    const char *args[] = {"--dir", dir, "--seed", "78", "--batches", "20", "--crash", NULL};
    uint64_t wseq, wdigest;
    cr_assert_eq(st_writer(args, &wseq, &wdigest), 0, "the writer failed");
    cr_assert_eq(wseq, 21);
    trastenda_verify_report rep;
    cr_assert_eq(trastenda_store_verify(dir, &cfg.engine, &rep, err, sizeof(err)), TRASTENDA_OK,
                 "%s", err);
    cr_assert_eq(rep.log_entries, rep.log_last);
    /* Entry 7 replaced by garbage: malformed. */
    snprintf(path, sizeof(path), "%s/log", dir);
    uint8_t key[9] = {'L', 0, 0, 0, 0, 0, 0, 0, 7};
    rocksdb_options_t *o = rocksdb_options_create();
    char *rerr = NULL;
    rocksdb_t *db = rocksdb_open(o, path, &rerr);
    cr_assert_null(rerr, "%s", rerr);
    rocksdb_writeoptions_t *wo = rocksdb_writeoptions_create();
    rocksdb_put(db, wo, (const char *)key, 9, "garbage", 7, &rerr);
    rocksdb_close(db);
    cr_assert_eq(trastenda_store_verify(dir, &cfg.engine, &rep, err, sizeof(err)),
                 TRASTENDA_E_CORRUPT);
    cr_assert(strstr(err, "entry 7") != NULL, "message: %s", err);
    cr_assert_eq(try_open(dir, err, sizeof(err)), TRASTENDA_E_CORRUPT, "open refuses it too");
    cr_assert(strstr(err, "entry 7") != NULL, "message: %s", err);
    /* Entry 7 gone: a gap. */
    db = rocksdb_open(o, path, &rerr);
    rocksdb_delete(db, wo, (const char *)key, 9, &rerr);
    rocksdb_close(db);
    cr_assert_eq(trastenda_store_verify(dir, &cfg.engine, &rep, err, sizeof(err)),
                 TRASTENDA_E_CORRUPT);
    cr_assert(strstr(err, "gap") != NULL, "message: %s", err);
    cr_assert_eq(try_open(dir, err, sizeof(err)), TRASTENDA_E_CORRUPT);
    cr_assert(strstr(err, "missing") != NULL, "message: %s", err);
    rocksdb_writeoptions_destroy(wo);
    rocksdb_options_destroy(o);
    st_rmdir(dir);
}

/* ---- log retention ---- */

static int64_t ret_now = INT64_C(1700000000000);

static int64_t
ret_clock(void *ctx)
{
    (void)ctx;
    return __atomic_load_n(&ret_now, __ATOMIC_ACQUIRE);
}

/* Runs n receipts, each its own batch, then has the state written (a ledger query waits for it). */
static void
receipts(trastenda_store *st, int n)
{
    struct gcmd x;
    trastenda_result r;
    cmd_stock(&x, TRASTENDA_OP_RECEIVE, 0, 0, 1);
    for (int i = 0; i < n; i++)
        cr_assert_eq(st_run(st, &x.c, 1, &r, NULL), TRASTENDA_OK);
    trastenda_ledger_query q = {.sku = {"s0", 2}, .limit = 1, .timeout_ms = ST_MAT_WAIT_MS};
    trastenda_ledger_page *p;
    cr_assert_eq(trastenda_store_ledger(st, &q, &p, NULL, 0), TRASTENDA_OK);
    cr_assert(p->complete);
    trastenda_ledger_page_free(p);
}

Test(store_files, the_log_is_cut_by_age_and_by_size_behind_the_state)
{
    char dir[512], err[512];
    static struct batch b;
    static trastenda_result res[BATCH_MAX];
    for (int by_size = 0; by_size < 2; by_size++) {
        st_tmpdir(dir, sizeof(dir), "retention");
        trastenda_store_config cfg;
        config(&cfg, dir);
        cfg.clock_ms = ret_clock;
        cfg.materialize_interval_ms = 3600000; /* writes only when the test asks */
        cfg.log_retention_ms = by_size ? 3600000 : 10000;
        cfg.log_retention_bytes = by_size ? 4000 : 0;
        trastenda_store *st = NULL;
        cr_assert_eq(trastenda_store_open(&cfg, &st, err, sizeof(err)), TRASTENDA_OK, "%s", err);
        setup_batch(&b);
        cr_assert_eq(st_run(st, b.cmds, b.n, res, NULL), TRASTENDA_OK);
        trastenda_store_stats s;
        for (int round = 0; round < 8; round++) {
            receipts(st, 20);
            trastenda_store_stats_get(st, &s);
            cr_assert_eq(s.materialized_seq, s.durable_seq);
            if (!by_size) {
                /* Nothing is older than the window until the clock moves. */
                cr_assert(round < 2 || s.log_first_seq > 1 || s.log_first_seq == 0,
                          "round %d: first %" PRIu64, round, s.log_first_seq);
                __atomic_fetch_add(&ret_now, 6000, __ATOMIC_ACQ_REL);
            }
        }
        trastenda_store_stats_get(st, &s);
        cr_assert_gt(s.log_first_seq, 20, "the log was cut (first entry %" PRIu64 ")",
                     s.log_first_seq);
        cr_assert_leq(s.log_first_seq, s.materialized_seq + 1, "never beyond the state");
        if (by_size) {
            /* Receipt entries are alike: what is left is about the cap plus one interval. */
            uint64_t per = s.log_bytes / s.durable_seq + 1;
            uint64_t kept = (s.durable_seq - s.log_first_seq + 1) * per;
            cr_assert_leq(kept, 4000 + 21 * per, "kept %" PRIu64 " bytes", kept);
        }
        uint64_t seq = 0, d = st_settled(st, &seq); /* one state: a maintenance batch may follow */
        trastenda_store_close(st);
        cr_assert_eq(trastenda_store_open(&cfg, &st, err, sizeof(err)), TRASTENDA_OK, "%s", err);
        cr_assert_eq(trastenda_store_durable_seq(st), seq);
        cr_assert_eq(st_digest(st), d);
        trastenda_store_close(st);
        st_rmdir(dir);
    }
}

static bool
first_visit(void *ctx, uint64_t seq, const uint8_t *entry, size_t len)
{
    (void)entry;
    (void)len;
    *(uint64_t *)ctx = seq;
    return false;
}

/* Does the log still hold entry `from` (a follower's last, which it reads again)? */
static bool
log_holds_from(trastenda_store *st, uint64_t from)
{
    uint64_t seen = 0, next = 0;
    trastenda_err e = trastenda_store_log_scan(st, from, 1, first_visit, &seen, &next);
    return e == TRASTENDA_OK && seen == from;
}

Test(store_files, the_log_keeps_what_a_follower_needs_up_to_its_cap)
{
    char dir[512], err[512];
    static struct batch b;
    static trastenda_result res[BATCH_MAX];
    st_tmpdir(dir, sizeof(dir), "keep");
    trastenda_store_config cfg;
    config(&cfg, dir);
    cfg.materialize_interval_ms = 3600000; /* writes only when the test asks */
    cfg.log_retention_ms = 0;              /* without a follower, cut at every state write */
    trastenda_store *st = NULL;
    cr_assert_eq(trastenda_store_open(&cfg, &st, err, sizeof(err)), TRASTENDA_OK, "%s", err);
    setup_batch(&b);
    cr_assert_eq(st_run(st, b.cmds, b.n, res, NULL), TRASTENDA_OK);
    uint64_t keep = trastenda_store_durable_seq(st);
    trastenda_store_log_keep(st, keep);
    for (int i = 0; i < 20; i++)
        receipts(st, 1); /* a state write, so a cut point, after each */
    trastenda_store_stats s;
    trastenda_store_stats_get(st, &s);
    cr_assert_eq(s.log_keep_seq, keep);
    cr_assert_eq(s.materialized_seq, s.durable_seq);
    cr_assert(log_holds_from(st, keep),
              "entry %" PRIu64 " kept for the follower (first %" PRIu64 ")", keep, s.log_first_seq);
    /* The follower moves on: what it no longer needs goes at the next state write. */
    keep = s.durable_seq - 5;
    trastenda_store_log_keep(st, keep);
    receipts(st, 1);
    trastenda_store_stats_get(st, &s);
    cr_assert(log_holds_from(st, keep), "entry %" PRIu64 " kept (first %" PRIu64 ")", keep,
              s.log_first_seq);
    cr_assert_geq(s.log_first_seq, keep - 2, "the older entries were cut (first %" PRIu64 ")",
                  s.log_first_seq);
    /* No follower: cut up to the state again. */
    trastenda_store_log_keep(st, 0);
    receipts(st, 1);
    trastenda_store_stats_get(st, &s);
    cr_assert_eq(s.log_first_seq, s.materialized_seq, "first %" PRIu64, s.log_first_seq);
    cr_assert(log_holds_from(st, s.materialized_seq),
              "the entry the state is at stays, for a follower's history check (first %" PRIu64 ")",
              s.log_first_seq);
    trastenda_store_close(st);

    /* The cap: a follower that needs more than log_follower_bytes_max of log loses its claim. */
    cfg.log_follower_bytes_max = 200;
    cr_assert_eq(trastenda_store_open(&cfg, &st, err, sizeof(err)), TRASTENDA_OK, "%s", err);
    keep = trastenda_store_durable_seq(st) + 1; /* the next entry */
    trastenda_store_log_keep(st, keep);
    receipts(st, 1);
    receipts(st, 1);
    trastenda_store_stats_get(st, &s);
    cr_assert(log_holds_from(st, keep),
              "within the cap, entry %" PRIu64 " is kept (first %" PRIu64 ", durable %" PRIu64
              ", %" PRIu64 " bytes a receipt)",
              keep, s.log_first_seq, s.durable_seq, s.log_bytes / 2);
    for (int i = 0; i < 20; i++)
        receipts(st, 1);
    trastenda_store_stats_get(st, &s);
    cr_assert_gt(s.log_first_seq, keep,
                 "beyond the cap the log is cut past the follower's entry "
                 "%" PRIu64 " (first %" PRIu64 ")",
                 keep, s.log_first_seq);
    uint64_t seen = 0, next = 0;
    cr_assert_eq(trastenda_store_log_scan(st, keep, 1, first_visit, &seen, &next),
                 TRASTENDA_E_SEQUENCE, "that follower is told to bootstrap");
    trastenda_store_close(st);
    st_rmdir(dir);
}

Test(store_files, the_materializer_takes_digests_where_the_log_times_enter_a_new_interval)
{
    char dir[512], err[512];
    static struct batch b;
    static trastenda_result res[BATCH_MAX];
    st_tmpdir(dir, sizeof(dir), "digests");
    trastenda_store_config cfg;
    config(&cfg, dir);
    cfg.clock_ms = ret_clock;
    cfg.materialize_interval_ms = 3600000; /* writes (and catches up) only when the test asks */
    cfg.digest_interval_ms = 1000;
    __atomic_store_n(&ret_now, INT64_C(1700000000000), __ATOMIC_RELEASE); /* on an interval */
    trastenda_store *st = NULL;
    cr_assert_eq(trastenda_store_open(&cfg, &st, err, sizeof(err)), TRASTENDA_OK, "%s", err);
    setup_batch(&b);
    cr_assert_eq(st_run(st, b.cmds, b.n, res, NULL), TRASTENDA_OK);
    /* Receipts 400 ms apart: the ones at +1200 and +2000 ms enter new intervals. */
    struct gcmd x;
    trastenda_result r;
    cmd_stock(&x, TRASTENDA_OP_RECEIVE, 0, 0, 1);
    uint64_t seqs[5];
    for (int i = 0; i < 5; i++) {
        __atomic_fetch_add(&ret_now, 400, __ATOMIC_ACQ_REL);
        cr_assert_eq(st_run(st, &x.c, 1, &r, &seqs[i]), TRASTENDA_OK);
    }
    receipts(st, 0); /* has the state written: the materializer has applied everything */
    uint64_t seq = 0, live = st_settled(st, &seq);
    trastenda_store_digest d[TRASTENDA_STORE_DIGESTS];
    uint32_t n = trastenda_store_digests(st, d, TRASTENDA_STORE_DIGESTS);
    /* Also at the first entry: the empty tables before it have time 0. (Whether the materializer
     * loaded its copy before or after these entries were written, it takes the same ones.) */
    cr_assert(n == 3 && d[0].seq == 1, "%u digests, the first at %" PRIu64, n, d[0].seq);
    const trastenda_store_digest *a = &d[1], *z = &d[2];
    cr_assert_eq(a->seq, seqs[2], "at entry %" PRIu64 ", not %" PRIu64, a->seq, seqs[2]);
    cr_assert_eq(z->seq, seqs[4], "at entry %" PRIu64 ", not %" PRIu64, z->seq, seqs[4]);
    /* The last receipt is the last entry: the materializer's copy equals the live tables. */
    cr_assert_eq(seq, seqs[4], "no entry after the last receipt (%" PRIu64 ")", seq);
    cr_assert_eq(z->digest, live, "the materializer's digest is the live state's");
    cr_assert_neq(a->digest, z->digest);
    trastenda_store_close(st);
    st_rmdir(dir);
}

/* Context switches of this process's thread named `comm` so far; -1 when there is none. */
static long
thread_switches(const char *comm)
{
    char path[300], name[64], line[256];
    DIR *d = opendir("/proc/self/task");
    if (d == NULL) return -1;
    long n = -1;
    for (struct dirent *t = readdir(d); t != NULL && n < 0; t = readdir(d)) {
        if (t->d_name[0] == '.') continue;
        snprintf(path, sizeof(path), "/proc/self/task/%s/comm", t->d_name);
        FILE *f = fopen(path, "r");
        if (f == NULL) continue;
        bool is = fgets(name, sizeof(name), f) != NULL && strncmp(name, comm, strlen(comm)) == 0;
        fclose(f);
        if (!is) continue;
        snprintf(path, sizeof(path), "/proc/self/task/%s/status", t->d_name);
        if ((f = fopen(path, "r")) == NULL) continue;
        long v;
        n = 0;
        while (fgets(line, sizeof(line), f) != NULL)
            if (sscanf(line, "voluntary_ctxt_switches: %ld", &v) == 1 ||
                sscanf(line, "nonvoluntary_ctxt_switches: %ld", &v) == 1)
                n += v;
        fclose(f);
    }
    closedir(d);
    return n;
}

Test(store_files, an_idle_materializer_sleeps_until_an_entry_comes)
{
    char dir[512], err[512];
    static struct batch b;
    static trastenda_result res[BATCH_MAX];
    st_tmpdir(dir, sizeof(dir), "idle");
    trastenda_store_config cfg;
    config(&cfg, dir); /* a state write every 2..20 ms while there is something to write */
    trastenda_store *st = NULL;
    cr_assert_eq(trastenda_store_open(&cfg, &st, err, sizeof(err)), TRASTENDA_OK, "%s", err);
    setup_batch(&b);
    cr_assert_eq(st_run(st, b.cmds, b.n, res, NULL), TRASTENDA_OK);
    receipts(st, 1); /* materialized: nothing left to write */
    usleep(50 * 1000);
    long before = thread_switches("ts-materialize");
    cr_assert(before >= 0, "no ts-materialize thread");
    usleep(500 * 1000);
    long woke = thread_switches("ts-materialize") - before;
    /* It used to wake every millisecond once the interval had passed (~500 here). */
    cr_assert(woke < 50, "the idle materializer was switched %ld times in 500 ms", woke);
    receipts(st, 1); /* and an entry still wakes it */
    trastenda_store_close(st);
    st_rmdir(dir);
}

/* Polls until the state covers everything durable, or 10 s pass. */
static bool
wait_materialized(trastenda_store *st, trastenda_store_stats *s)
{
    for (int i = 0; i < 1000; i++) {
        trastenda_store_stats_get(st, s);
        if (s->materialized_seq == s->durable_seq) return true;
        usleep(10 * 1000);
    }
    return false;
}

/* Past materialize_interval_ms a state write waits until the log since the last write is as large
 * as that write was, or until materialize_interval_max_ms. */
Test(store_files, a_state_write_waits_for_as_much_log_as_the_last_one_wrote)
{
    char dir[512], err[512];
    static struct batch b;
    static trastenda_result res[BATCH_MAX];
    for (int capped = 0; capped < 2; capped++) {
        st_tmpdir(dir, sizeof(dir), "adaptive");
        trastenda_store_config cfg;
        config(&cfg, dir);
        cfg.materialize_interval_ms = 20;
        cfg.materialize_interval_max_ms = capped ? 2000 : 3600000;
        trastenda_store *st = NULL;
        cr_assert_eq(trastenda_store_open(&cfg, &st, err, sizeof(err)), TRASTENDA_OK, "%s", err);
        setup_batch(&b); /* the catalogue: one state write of many pages */
        cr_assert_eq(st_run(st, b.cmds, b.n, res, NULL), TRASTENDA_OK);
        trastenda_store_stats s0, s;
        cr_assert(wait_materialized(st, &s0), "the catalogue was not written");
        cr_assert_gt(s0.state_write_bytes, 0);
        struct gcmd x;
        trastenda_result r;
        cmd_stock(&x, TRASTENDA_OP_RECEIVE, 0, 0, 1);
        cr_assert_eq(st_run(st, &x.c, 1, &r, NULL), TRASTENDA_OK);
        trastenda_store_stats_get(st, &s);
        cr_assert_lt(s.log_bytes - s0.log_bytes, s0.state_write_bytes, "one receipt's entry");
        if (capped) { /* not at the shortest interval, but at the longest all the same */
            usleep(300 * 1000);
            trastenda_store_stats_get(st, &s);
            cr_assert_eq(s.state_writes, s0.state_writes, "a state write for one receipt");
            cr_assert(wait_materialized(st, &s), "not written at the longest interval");
            cr_assert_eq(s.state_writes, s0.state_writes + 1);
        } else {
            usleep(300 * 1000); /* 15 shortest intervals */
            trastenda_store_stats_get(st, &s);
            cr_assert_eq(s.state_writes, s0.state_writes, "a state write for one receipt");
            cr_assert_lt(s.materialized_seq, s.durable_seq);
            /* Receipts until the next write: by then the log since the last is at least as
             * large as that write. */
            for (int i = 0; i < 100000 && s.state_writes == s0.state_writes; i++) {
                cr_assert_eq(st_run(st, &x.c, 1, &r, NULL), TRASTENDA_OK);
                trastenda_store_stats_get(st, &s);
            }
            cr_assert_gt(s.state_writes, s0.state_writes, "no state write after 100,000 entries");
            cr_assert_geq(s.log_bytes - s0.log_bytes, s0.state_write_bytes,
                          "written after %" PRIu64 " log bytes, the last write %" PRIu64,
                          s.log_bytes - s0.log_bytes, s0.state_write_bytes);
        }
        trastenda_store_close(st);
        st_rmdir(dir);
    }
    /* The longest interval below the shortest is refused with the setting named. */
    trastenda_store_config cfg;
    config(&cfg, "/nonexistent-not-opened");
    cfg.materialize_interval_ms = 1000;
    cfg.materialize_interval_max_ms = 999;
    trastenda_store *st = NULL;
    cr_assert_eq(trastenda_store_open(&cfg, &st, err, sizeof(err)), TRASTENDA_E_INVALID);
    cr_assert_null(st);
    cr_assert(strstr(err, "materialize_interval_max_ms") != NULL, "%s", err);
}

Test(store_files, smaller_tables_than_the_directory_was_written_with_are_refused)
{
    char dir[512], err[512];
    st_tmpdir(dir, sizeof(dir), "caps");
    trastenda_store_config cfg;
    config(&cfg, dir);
    trastenda_store *st = NULL;
    cr_assert_eq(trastenda_store_open(&cfg, &st, err, sizeof(err)), TRASTENDA_OK, "%s", err);
    trastenda_store_close(st);
    cfg.engine.holds_max /= 2;
    cr_assert_eq(trastenda_store_open(&cfg, &st, err, sizeof(err)), TRASTENDA_E_INVALID);
    cr_assert(strstr(err, "holds_max") != NULL && strstr(err, "raise") != NULL, "%s", err);
    cfg.engine.holds_max *= 4; /* larger is fine, and becomes the record */
    cr_assert_eq(trastenda_store_open(&cfg, &st, err, sizeof(err)), TRASTENDA_OK, "%s", err);
    trastenda_store_close(st);
    trastenda_verify_report rep;
    cr_assert_eq(trastenda_store_verify(dir, NULL, &rep, err, sizeof(err)), TRASTENDA_OK, "%s",
                 err);
    st_rmdir(dir);
}

/* ---- reading the log; queries riding with commands ---- */

struct scan_acc {
    uint64_t seen, last;
    bool gap;
};

static bool
scan_visit(void *ctx, uint64_t seq, const uint8_t *entry, size_t len)
{
    struct scan_acc *a = ctx;
    trastenda_entry_header hdr;
    trastenda_entry_iter it;
    cr_assert_eq(trastenda_entry_open(entry, len, &hdr, &it), TRASTENDA_OK);
    cr_assert_eq(hdr.seq, seq);
    if (a->last != 0 && seq != a->last + 1) a->gap = true;
    a->last = seq;
    a->seen++;
    return true;
}

struct ride {
    struct st_wait w;
    int64_t on_hand_seen;
};

static void
ride_query(trastenda_request *req, const trastenda_engine *e)
{
    struct ride *r = req->ctx;
    uint32_t sku, loc;
    trastenda_stock s;
    if (trastenda_engine_sku_lookup(e, (trastenda_str){"s0", 2}, &sku) == TRASTENDA_OK &&
        trastenda_engine_location_lookup(e, (trastenda_str){"l0", 2}, &loc) == TRASTENDA_OK &&
        trastenda_engine_stock_read(e, sku, loc, &s) == TRASTENDA_OK)
        r->on_hand_seen = s.on_hand;
}

static void
ride_done(trastenda_request *req, trastenda_err status)
{
    struct ride *r = req->ctx;
    r->w.status = status;
    __atomic_store_n(&r->w.done, 1, __ATOMIC_RELEASE);
}

Test(store_files, the_log_reads_back_in_order_and_queries_see_their_commands)
{
    char dir[512], err[512];
    st_tmpdir(dir, sizeof(dir), "scan");
    trastenda_store_config cfg;
    config(&cfg, dir);
    trastenda_store *st = NULL;
    cr_assert_eq(trastenda_store_open(&cfg, &st, err, sizeof(err)), TRASTENDA_OK, "%s", err);
    static struct batch b;
    static trastenda_result res[BATCH_MAX];
    setup_batch(&b);
    cr_assert_eq(st_run(st, b.cmds, b.n, res, NULL), TRASTENDA_OK);
    struct gcmd x;
    cmd_stock(&x, TRASTENDA_OP_RECEIVE, 0, 0, 7);
    for (int i = 0; i < 30; i++)
        cr_assert_eq(st_run(st, &x.c, 1, res, NULL), TRASTENDA_OK);
    /* A query riding with a command sees it applied. */
    struct ride r;
    memset(&r, 0, sizeof(r));
    r.w.req.cmds = &x.c;
    r.w.req.n = 1;
    r.w.req.results = res;
    r.w.req.query = ride_query;
    r.w.req.done = ride_done;
    r.w.req.ctx = &r;
    cr_assert_eq(trastenda_store_submit(st, &r.w.req), TRASTENDA_OK);
    cr_assert_eq(st_wait_for(&r.w), TRASTENDA_OK);
    cr_assert_eq(r.on_hand_seen, 31 * 7, "the query ran after the batch holding the command");
    uint64_t durable = trastenda_store_durable_seq(st);
    /* Everything, page by page. */
    struct scan_acc a = {0};
    uint64_t from = 1, next = 0;
    while (from <= durable) {
        cr_assert_eq(trastenda_store_log_scan(st, from, 7, scan_visit, &a, &next), TRASTENDA_OK);
        cr_assert_gt(next, from);
        from = next;
    }
    cr_assert_eq(a.seen, durable);
    cr_assert(!a.gap);
    cr_assert_eq(trastenda_store_log_scan(st, durable + 1, 10, scan_visit, &a, &next), TRASTENDA_OK,
                 "nothing past the durable end, no error");
    cr_assert_eq(next, durable + 1);
    trastenda_store_close(st);
    /* Cut at the state: the start is gone. */
    cfg.log_retention_ms = 0;
    cr_assert_eq(trastenda_store_open(&cfg, &st, err, sizeof(err)), TRASTENDA_OK, "%s", err);
    cr_assert_eq(st_run(st, &x.c, 1, res, NULL), TRASTENDA_OK);
    trastenda_store_close(st);
    cr_assert_eq(trastenda_store_open(&cfg, &st, err, sizeof(err)), TRASTENDA_OK, "%s", err);
    cr_assert_gt(trastenda_store_log_first(st), 1, "first %" PRIu64, trastenda_store_log_first(st));
    cr_assert_eq(trastenda_store_log_scan(st, 1, 10, scan_visit, &a, &next), TRASTENDA_E_SEQUENCE);
    trastenda_store_close(st);
    st_rmdir(dir);
}

static void
touch(const char *dir, const char *name)
{
    char path[600];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f, "%s", path);
    fclose(f);
}

static bool
exists(const char *dir, const char *name)
{
    char path[600];
    snprintf(path, sizeof(path), "%s%s%s", dir, name[0] ? "/" : "", name);
    struct stat sb;
    return stat(path, &sb) == 0;
}

Test(store_files, a_checkpoint_swap_cut_short_by_a_crash_is_finished_and_nothing_else_moves)
{
    char root[256], dir[300], old[320], staging[320];
    st_tmpdir(root, sizeof(root), "swap");
    snprintf(dir, sizeof(dir), "%s/d", root);
    snprintf(old, sizeof(old), "%s.old", dir);
    snprintf(staging, sizeof(staging), "%s.bootstrap", dir);
    char err[512];
    bool finished = true;
    /* A crash between the renames: no dir, the old data aside, the download synced. */
    cr_assert_eq(mkdir(old, 0755), 0);
    touch(old, "OLD");
    cr_assert_eq(mkdir(staging, 0755), 0);
    touch(staging, "NEW");
    /* Not complete yet (no LEADER: the last file a download writes): left as it is. */
    cr_assert_eq(trastenda_snapshot_recover(staging, dir, &finished, err, sizeof(err)),
                 TRASTENDA_OK, "%s", err);
    cr_assert(!finished && !exists(dir, "") && exists(staging, "NEW") && exists(old, "OLD"));
    touch(staging, "LEADER");
    cr_assert_eq(trastenda_snapshot_recover(staging, dir, &finished, err, sizeof(err)),
                 TRASTENDA_OK, "%s", err);
    cr_assert(finished);
    cr_assert(exists(dir, "NEW") && !exists(old, "") && !exists(staging, ""));
    /* A directory in place: a download left beside it is not the data (a crash before the
     * swap began); nothing moves. */
    cr_assert_eq(mkdir(staging, 0755), 0);
    touch(staging, "PARTIAL");
    touch(staging, "LEADER");
    cr_assert_eq(mkdir(old, 0755), 0);
    cr_assert_eq(trastenda_snapshot_recover(staging, dir, &finished, err, sizeof(err)),
                 TRASTENDA_OK, "%s", err);
    cr_assert(!finished);
    cr_assert(exists(dir, "NEW") && !exists(dir, "PARTIAL") && exists(staging, "PARTIAL"));
    /* No dir and no old data: a new node, not a cut swap. */
    char fresh[320];
    snprintf(fresh, sizeof(fresh), "%s/fresh", root);
    cr_assert_eq(trastenda_snapshot_recover(staging, fresh, &finished, err, sizeof(err)),
                 TRASTENDA_OK, "%s", err);
    cr_assert(!finished && !exists(fresh, "") && exists(staging, "PARTIAL"));
    (void)trastenda_rmtree(root);
}
