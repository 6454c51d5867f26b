/*
 * tests/storage/plain_torn_tail.c - a torn tail of the log's WAL ends recovery on the last
 * complete batch; damage in the middle of the WAL refuses the open.
 *
 * A child writes BATCHES random batches (tests/engine/gen.h), one request each, records the
 * state digest at every acknowledged batch (a query on the engine thread) and ends with _exit()
 * without closing: the log database's newest WAL file (dir/log/<highest>.log) then holds every
 * batch, one WAL record per batch, and no state was ever written. The clock stays still, so the
 * engine never applies batches of its own (no hold is ever due).
 *
 * The parent parses that WAL (32 KiB blocks of physical records: crc32c, length, type) into its
 * logical records and the batch sequence of each (the key of its put), then, each time on a fresh
 * copy of the directory (cp -a), opened in a child of its own (plain.h says why):
 *   (1) truncates the WAL at random offsets inside the last batch's record, at its start, and at
 *       random offsets anywhere after the format record: the open must succeed, recovering exactly
 *       the last batch complete before the cut (durable seq and digest), never part of a batch;
 *       some of these copies then take a batch in a child that ends without close, and reopen:
 *       the torn WAL must not break the next recovery;
 *   (2) flips a byte inside a record in the middle of the WAL (its data, or its checksum): the
 *       open must be refused with TRASTENDA_E_CORRUPT, not silently truncated;
 *   (3) damages a record header in the middle of the WAL (a length pointing past its block, a
 *       zeroed header), in a full block and in the last, partial one. What RocksDB's
 *       kTolerateCorruptedTailRecords does with these is reported ("observed: ..."); the test
 *       requires only that the open either fails with E_CORRUPT or recovers a complete batch, and
 *       with TS_TORN_STRICT=1 also that no acknowledged batch is silently dropped.
 * Both durability modes. TS_SEED replays a run. About 3 s in Release.
 */
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>

#include "gen.h"
#include "plain.h"
#include "sthelp.h"

#define BATCHES          160
#define POINTS_MAX       (BATCHES + 3)
#define CUTS_LAST        10 /* random cuts inside the last record */
#define CUTS_ANY         8  /* random cuts anywhere after the format record */
#define CRASH_EVERY      4  /* every 4th cut copy also takes a batch and crashes */
#define FLIPS            4
#define WAL_BLOCK        32768
#define WAL_HEADER       7
#define WAL_RECORDS      1024
#define TYPE_FULL        1
#define TYPE_FIRST       2
#define TYPE_MIDDLE      3
#define TYPE_LAST        4
#define BATCH_PUT        0x1 /* RocksDB's kTypeValue in a WriteBatch */
#define LOG_KEY_BYTES    9   /* 'L' + u64 big-endian seq (storage/db.h) */
#define CHILD_TIMEOUT_MS 60000

static int64_t clock_fixed = T0;

static int64_t
test_clock(void *ctx)
{
    (void)ctx;
    return clock_fixed;
}

static void
config(trastenda_store_config *cfg, const char *dir, trastenda_durability mode)
{
    trastenda_store_config_default(cfg);
    cfg->dir = dir;
    gen_config(&cfg->engine, false);
    cfg->durability = mode;
    cfg->queue_max = 64;
    cfg->materialize_interval_ms = 3600000; /* never: the log alone holds the state */
    cfg->log = st_log_quiet;
    cfg->clock_ms = test_clock;
}

/* The digest after each acknowledged batch; seq 0 is the empty store. */
struct point {
    uint64_t seq, digest;
};

static struct point points[POINTS_MAX];
static uint32_t n_points;

static const struct point *
point_at(uint64_t seq)
{
    for (uint32_t i = 0; i < n_points; i++)
        if (points[i].seq == seq) return &points[i];
    return NULL;
}

/* ---- the writer child ---- */

static void
child_send(int fd, uint64_t seq, uint64_t digest)
{
    struct point p = {seq, digest};
    if (write(fd, &p, sizeof(p)) != (ssize_t)sizeof(p)) _exit(5);
}

static void __attribute__((noreturn))
child_write(const trastenda_store_config *cfg, uint64_t seed, int fd)
{
    pt_child_start();
    trastenda_store *st = NULL;
    char err[512];
    if (trastenda_store_open(cfg, &st, err, sizeof(err)) != TRASTENDA_OK) {
        fprintf(stderr, "plain_torn_tail child: open: %s\n", err);
        _exit(2);
    }
    child_send(fd, trastenda_store_durable_seq(st), st_digest(st));
    static struct batch b;
    static trastenda_result res[BATCH_MAX];
    struct gen g = {.rng = {seed}};
    setup_batch(&b);
    for (uint32_t i = 0; i <= BATCHES; i++) {
        if (i > 0) next_batch(&g, &b);
        uint64_t seq = 0;
        if (st_run(st, b.cmds, b.n, res, &seq) != TRASTENDA_OK) {
            fprintf(stderr, "plain_torn_tail child: batch %u was not acknowledged\n", i);
            _exit(3);
        }
        learn(&g, b.g, res, b.n);
        struct st_wait w;
        memset(&w, 0, sizeof(w));
        w.req.query = st_digest_query;
        w.req.done = st_wait_done;
        w.req.ctx = &w;
        while (trastenda_store_submit(st, &w.req) == TRASTENDA_E_BUSY)
            usleep(100);
        st_wait_for(&w);
        if (w.req.seq != seq) { /* a batch of the store's own: the clock moved */
            fprintf(stderr, "plain_torn_tail child: batch %" PRIu64 " read at %" PRIu64 "\n", seq,
                    w.req.seq);
            _exit(4);
        }
        child_send(fd, seq, w.digest);
    }
    _exit(0); /* no close: no flush, the WAL keeps every batch */
}

/* Runs the writer child; fills points[]. */
static void
write_batches(const trastenda_store_config *cfg, uint64_t seed)
{
    int fds[2];
    PT_CHECK(pipe(fds) == 0, "pipe: %s", strerror(errno));
    fflush(NULL);
    pid_t pid = fork();
    PT_CHECK(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        close(fds[0]);
        child_write(cfg, seed, fds[1]);
    }
    pt_child_add(pid);
    close(fds[1]);
    n_points = 0;
    struct point p;
    int64_t deadline = pt_now_ms() + CHILD_TIMEOUT_MS;
    while (pt_read_full(fds[0], &p, sizeof(p), deadline) == (ssize_t)sizeof(p)) {
        PT_CHECK(n_points < POINTS_MAX, "too many digests from the child");
        points[n_points++] = p;
    }
    close(fds[0]);
    bool forced;
    int status = pt_wait_child(pid, deadline, &forced);
    char how[96];
    pt_describe_status(status, how, sizeof(how));
    PT_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the writer child %s", how);
    PT_CHECK(n_points == BATCHES + 2, "%u digests from the child, expected %u", n_points,
             BATCHES + 2);
}

/* ---- the WAL ---- */

struct wal_rec {
    uint64_t start, end; /* first fragment's header .. end of the last fragment */
    uint32_t first_len;  /* data bytes of the first fragment */
    uint64_t seq;        /* the batch of the put 'L' + seq (the highest one); 0 for others */
};

struct wal {
    char path[PT_PATH_BYTES + 64];
    uint8_t *bytes;
    size_t len;
    struct wal_rec recs[WAL_RECORDS];
    uint32_t n;
};

/* The newest WAL file of dir/log: the highest number. */
static void
wal_find(const char *dir, char *out, size_t cap)
{
    char logdir[PT_PATH_BYTES + 8];
    snprintf(logdir, sizeof(logdir), "%s/log", dir);
    DIR *d = opendir(logdir);
    PT_CHECK(d != NULL, "opendir %s: %s", logdir, strerror(errno));
    unsigned long best = 0;
    bool found = false;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        size_t n = strlen(de->d_name);
        if (n < 5 || strcmp(de->d_name + n - 4, ".log") != 0) continue;
        unsigned long num = strtoul(de->d_name, NULL, 10);
        if (!found || num > best) best = num;
        found = true;
    }
    closedir(d);
    PT_CHECK(found, "no WAL file in %s", logdir);
    snprintf(out, cap, "%s/%06lu.log", logdir, best);
}

static bool
varint32(const uint8_t **p, const uint8_t *end, uint32_t *out)
{
    uint32_t v = 0;
    for (int shift = 0; shift <= 28 && *p < end; shift += 7) {
        uint8_t b = *(*p)++;
        v |= (uint32_t)(b & 0x7f) << shift;
        if ((b & 0x80) == 0) {
            *out = v;
            return true;
        }
    }
    return false;
}

/* The highest log sequence among the puts of a WriteBatch (8-byte seq, 4-byte count, records). */
static uint64_t
batch_seq(const uint8_t *b, size_t len)
{
    PT_CHECK(len >= 12, "a WAL record of %zu bytes: not a WriteBatch", len);
    uint32_t count = (uint32_t)(b[8] | b[9] << 8 | b[10] << 16 | (uint32_t)b[11] << 24);
    const uint8_t *p = b + 12, *end = b + len;
    uint64_t seq = 0;
    for (uint32_t i = 0; i < count; i++) {
        PT_CHECK(p < end && *p == BATCH_PUT, "a WriteBatch record of type 0x%x: only puts expected",
                 p < end ? *p : 0xff);
        p++;
        uint32_t klen, vlen;
        PT_CHECK(varint32(&p, end, &klen) && klen <= (size_t)(end - p), "a malformed key length");
        const uint8_t *key = p;
        p += klen;
        PT_CHECK(varint32(&p, end, &vlen) && vlen <= (size_t)(end - p), "a malformed value");
        p += vlen;
        if (klen == LOG_KEY_BYTES && key[0] == 'L') {
            uint64_t s = 0;
            for (int k = 1; k < 9; k++)
                s = s << 8 | key[k];
            if (s > seq) seq = s;
        }
    }
    return seq;
}

static uint8_t *
file_read(const char *path, size_t *len)
{
    int fd = open(path, O_RDONLY);
    PT_CHECK(fd >= 0, "open %s: %s", path, strerror(errno));
    struct stat sb;
    PT_CHECK(fstat(fd, &sb) == 0 && sb.st_size > 0, "%s is empty", path);
    uint8_t *b = malloc((size_t)sb.st_size);
    PT_CHECK(b != NULL, "out of memory");
    size_t got = 0;
    while (got < (size_t)sb.st_size) {
        ssize_t r = read(fd, b + got, (size_t)sb.st_size - got);
        PT_CHECK(r > 0, "read %s: %s", path, strerror(errno));
        got += (size_t)r;
    }
    close(fd);
    *len = got;
    return b;
}

/* Splits the WAL into logical records. An intact WAL is expected: anything else fails. */
static void
wal_parse(struct wal *w)
{
    static uint8_t data[1u << 22];
    size_t dlen = 0, off = 0;
    bool inside = false;
    w->n = 0;
    while (off < w->len) {
        size_t left = WAL_BLOCK - off % WAL_BLOCK;
        if (left < WAL_HEADER) { /* the block's zero trailer */
            off += left;
            continue;
        }
        PT_CHECK(off + WAL_HEADER <= w->len, "a partial header at the end of %s", w->path);
        const uint8_t *h = w->bytes + off;
        uint32_t len = (uint32_t)(h[4] | h[5] << 8), type = h[6];
        PT_CHECK(type >= TYPE_FULL && type <= TYPE_LAST && off + WAL_HEADER + len <= w->len,
                 "%s: a record of type %u, %u bytes at offset %zu: not a plain intact WAL", w->path,
                 type, len, off);
        PT_CHECK((type == TYPE_FULL || type == TYPE_FIRST) != inside,
                 "%s: fragment type %u out of order at offset %zu", w->path, type, off);
        if (!inside) {
            PT_CHECK(w->n < WAL_RECORDS, "more than %d WAL records", WAL_RECORDS);
            w->recs[w->n] = (struct wal_rec){.start = off, .first_len = len};
            dlen = 0;
        }
        PT_CHECK(dlen + len <= sizeof(data), "a WAL record over %zu bytes", sizeof(data));
        memcpy(data + dlen, h + WAL_HEADER, len);
        dlen += len;
        off += WAL_HEADER + len;
        inside = type == TYPE_FIRST || type == TYPE_MIDDLE;
        if (!inside) {
            w->recs[w->n].end = off;
            w->recs[w->n].seq = batch_seq(data, dlen);
            w->n++;
        }
    }
    PT_CHECK(!inside, "%s ends inside a record", w->path);
}

static void
wal_load(struct wal *w, const char *dir)
{
    wal_find(dir, w->path, sizeof(w->path));
    w->bytes = file_read(w->path, &w->len);
    wal_parse(w);
    /* The format record, then batches 1..BATCHES + 1 in order. */
    PT_CHECK(w->n == BATCHES + 2 && w->recs[0].seq == 0,
             "%s: %u records, the first of batch %" PRIu64 "; expected the format record and %u "
             "batches",
             w->path, w->n, w->n > 0 ? w->recs[0].seq : 0, BATCHES + 1);
    for (uint32_t i = 1; i < w->n; i++)
        PT_CHECK(w->recs[i].seq == i, "%s: record %u holds batch %" PRIu64, w->path, i,
                 w->recs[i].seq);
}

/* The last batch whose record ends at or before offset `cut`. */
static uint64_t
wal_complete_before(const struct wal *w, uint64_t cut)
{
    uint64_t seq = 0;
    for (uint32_t i = 0; i < w->n; i++)
        if (w->recs[i].end <= cut && w->recs[i].seq > seq) seq = w->recs[i].seq;
    return seq;
}

/* ---- copies of the directory ---- */

/* A copy of src in a new directory; the same path of the WAL in the copy into wal_out. */
static void
copy_dir(const char *src, const struct wal *w, char *dst, size_t cap, char *wal_out, size_t wal_cap)
{
    st_tmpdir(dst, cap, "torn-copy");
    pt_dir_add(dst);
    char cmd[3 * PT_PATH_BYTES];
    snprintf(cmd, sizeof(cmd), "cp -a '%s/.' '%s/'", src, dst);
    PT_CHECK(system(cmd) == 0, "%s failed", cmd);
    const char *name = strrchr(w->path, '/');
    snprintf(wal_out, wal_cap, "%s/log%s", dst, name);
}

static void
wal_truncate(const char *path, uint64_t len)
{
    PT_CHECK(truncate(path, (off_t)len) == 0, "truncate %s: %s", path, strerror(errno));
}

static void
wal_poke(const char *path, uint64_t off, const uint8_t *bytes, size_t n)
{
    int fd = open(path, O_WRONLY);
    PT_CHECK(fd >= 0, "open %s: %s", path, strerror(errno));
    PT_CHECK(pwrite(fd, bytes, n, (off_t)off) == (ssize_t)n, "pwrite %s: %s", path,
             strerror(errno));
    close(fd);
}

/* ---- opening a damaged copy ---- */

struct opened {
    trastenda_err code;
    char err[512];
    uint64_t seq, digest, replayed;
};

struct open_arg {
    const trastenda_store_config *cfg;
    const char *dir;
};

/* In a child (the parent never starts RocksDB's threads: see plain.h): opens, reads, closes. */
static void
open_fn(void *arg, void *out)
{
    const struct open_arg *a = arg;
    struct opened *o = out;
    trastenda_store_config cfg = *a->cfg;
    cfg.dir = a->dir;
    trastenda_store *st = NULL;
    memset(o, 0, sizeof(*o));
    o->code = trastenda_store_open(&cfg, &st, o->err, sizeof(o->err));
    if (o->code != TRASTENDA_OK) return;
    trastenda_store_stats stats;
    trastenda_store_stats_get(st, &stats);
    o->seq = stats.durable_seq;
    o->replayed = stats.recovered_entries;
    o->digest = st_digest(st);
    trastenda_store_close(st);
}

static void
open_copy(const trastenda_store_config *cfg, const char *dir, struct opened *o)
{
    struct open_arg a = {cfg, dir};
    pt_run_forked("opening a damaged copy", open_fn, &a, o, sizeof(*o), CHILD_TIMEOUT_MS);
}

/* A child opens the copy, adds a NOOP batch and ends without close; returns seq and digest. */
static struct point
crash_after_one_more(const trastenda_store_config *base, const char *dir)
{
    int fds[2];
    PT_CHECK(pipe(fds) == 0, "pipe: %s", strerror(errno));
    fflush(NULL);
    pid_t pid = fork();
    PT_CHECK(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        pt_child_start();
        close(fds[0]);
        trastenda_store_config cfg = *base;
        cfg.dir = dir;
        trastenda_store *st = NULL;
        char err[512];
        if (trastenda_store_open(&cfg, &st, err, sizeof(err)) != TRASTENDA_OK) _exit(2);
        trastenda_cmd c;
        memset(&c, 0, sizeof(c));
        c.op = TRASTENDA_OP_NOOP;
        trastenda_result r;
        uint64_t seq = 0;
        if (st_run(st, &c, 1, &r, &seq) != TRASTENDA_OK) _exit(3);
        child_send(fds[1], seq, st_digest(st));
        _exit(0);
    }
    pt_child_add(pid);
    close(fds[1]);
    struct point p = {0, 0};
    ssize_t r = pt_read_full(fds[0], &p, sizeof(p), pt_now_ms() + CHILD_TIMEOUT_MS);
    close(fds[0]);
    bool forced;
    int status = pt_wait_child(pid, pt_now_ms() + CHILD_TIMEOUT_MS, &forced);
    char how[96];
    pt_describe_status(status, how, sizeof(how));
    PT_CHECK(r == (ssize_t)sizeof(p) && WIFEXITED(status) && WEXITSTATUS(status) == 0,
             "a child writing after the torn tail %s", how);
    return p;
}

/* (1): a cut at `cut` recovers exactly the last complete batch before it. */
static void
check_cut(const trastenda_store_config *cfg, const char *src, const struct wal *w, uint64_t cut,
          bool crash_after, const char *mode)
{
    char dir[PT_PATH_BYTES], wal[2 * PT_PATH_BYTES];
    copy_dir(src, w, dir, sizeof(dir), wal, sizeof(wal));
    wal_truncate(wal, cut);
    uint64_t want = wal_complete_before(w, cut);
    const struct point *p = point_at(want);
    PT_CHECK(p != NULL, "no digest for batch %" PRIu64, want);
    struct opened o;
    open_copy(cfg, dir, &o);
    PT_CHECK(o.code == TRASTENDA_OK, "%s: WAL cut at byte %" PRIu64 " of %zu: open: %s: %s", mode,
             cut, w->len, trastenda_err_name(o.code), o.err);
    PT_CHECK(o.seq == want && o.digest == p->digest && o.replayed == want,
             "%s: WAL cut at byte %" PRIu64 " of %zu (inside batch %" PRIu64
             "): recovered batch %" PRIu64 " (%" PRIu64
             " replayed, digest %s), expected batch %" PRIu64,
             mode, cut, w->len, want + 1, o.seq, o.replayed,
             o.digest == p->digest ? "equal" : "differs", want);
    if (crash_after) {
        struct point q = crash_after_one_more(cfg, dir);
        PT_CHECK(q.seq == want + 1, "%s: after the cut, the next batch is %" PRIu64, mode, q.seq);
        open_copy(cfg, dir, &o);
        PT_CHECK(o.code == TRASTENDA_OK && o.seq == q.seq && o.digest == q.digest,
                 "%s: cut at %" PRIu64 ", one batch more, crash: reopened %s (%s) at batch %" PRIu64
                 ", expected %" PRIu64,
                 mode, cut, trastenda_err_name(o.code), o.err, o.seq, q.seq);
    }
    pt_dir_remove(dir);
}

/* (2): a flipped byte in the middle of the WAL refuses the open. */
static void
check_flip(const trastenda_store_config *cfg, const char *src, const struct wal *w, uint32_t rec,
           uint64_t off, const char *what, const char *mode)
{
    char dir[PT_PATH_BYTES], wal[2 * PT_PATH_BYTES];
    copy_dir(src, w, dir, sizeof(dir), wal, sizeof(wal));
    uint8_t b = w->bytes[off] ^ 0x5a;
    wal_poke(wal, off, &b, 1);
    struct opened o;
    open_copy(cfg, dir, &o);
    PT_CHECK(o.code == TRASTENDA_E_CORRUPT,
             "%s: a byte of the %s of batch %" PRIu64 "'s record flipped (offset %" PRIu64
             " of %zu, the middle of the WAL): open gave %s (%s)%s",
             mode, what, w->recs[rec].seq, off, w->len, trastenda_err_name(o.code), o.err,
             o.code == TRASTENDA_OK ? " instead of refusing" : "");
    if (getenv("TS_TEST_LOG") != NULL)
        fprintf(stderr, "%s: %s flipped in batch %" PRIu64 ": refused: %s\n", mode, what,
                w->recs[rec].seq, o.err);
    pt_dir_remove(dir);
}

enum damage {
    LENGTH_PAST_BLOCK, /* the length's high byte set: the record claims more than its block */
    HEADER_ZEROED      /* type 0, length 0: what a preallocated or zero-filled region reads as */
};

static uint32_t observed_losses;

/*
 * (3): header damage; observed, and never a half batch. The WAL is first cut after the record of
 * batch `upto` (a crash right after that batch was written), so that the damaged record may sit
 * in the last, partial block.
 */
static void
observe_header(const trastenda_store_config *cfg, const char *src, const struct wal *w,
               uint32_t rec, uint32_t upto, enum damage how, const char *mode)
{
    char dir[PT_PATH_BYTES], wal[2 * PT_PATH_BYTES];
    copy_dir(src, w, dir, sizeof(dir), wal, sizeof(wal));
    const struct wal_rec *r = &w->recs[rec];
    uint64_t len = w->recs[upto].end, last = w->recs[upto].seq;
    wal_truncate(wal, len);
    uint8_t zero[WAL_HEADER] = {0}, high = 0x7f;
    if (how == LENGTH_PAST_BLOCK)
        wal_poke(wal, r->start + 5, &high, 1);
    else
        wal_poke(wal, r->start, zero, sizeof(zero));
    struct opened o;
    open_copy(cfg, dir, &o);
    const char *what = how == LENGTH_PAST_BLOCK ? "length past its block" : "zeroed header";
    const char *where =
        r->start >= len / WAL_BLOCK * WAL_BLOCK ? "in the last, partial block" : "in a full block";
    if (o.code == TRASTENDA_OK) {
        const struct point *p = point_at(o.seq);
        PT_CHECK(p != NULL && p->digest == o.digest && o.seq <= last,
                 "%s: %s in batch %" PRIu64 "'s record: opened at batch %" PRIu64
                 " with a state no batch had: a half batch",
                 mode, what, r->seq, o.seq);
        fprintf(stderr,
                "plain_torn_tail: observed (%s): %s in the record of batch %" PRIu64
                " (offset %" PRIu64 " of %" PRIu64 ", %s): open succeeded at batch %" PRIu64
                "; batches %" PRIu64 "..%" PRIu64 ", all acknowledged, silently dropped\n",
                mode, what, r->seq, r->start, len, where, o.seq, o.seq + 1, last);
        observed_losses += o.seq < last;
        PT_CHECK(getenv("TS_TORN_STRICT") == NULL || o.seq == last,
                 "TS_TORN_STRICT: acknowledged batches were silently dropped");
    } else {
        PT_CHECK(o.code == TRASTENDA_E_CORRUPT, "%s: %s: open gave %s (%s), not E_CORRUPT", mode,
                 what, trastenda_err_name(o.code), o.err);
        fprintf(stderr,
                "plain_torn_tail: observed (%s): %s in the record of batch %" PRIu64
                " (offset %" PRIu64 " of %" PRIu64 ", %s): open refused: %s\n",
                mode, what, r->seq, r->start, len, where, o.err);
    }
    pt_dir_remove(dir);
}

/* A record in the middle whose whole record lies in a full block, the WAL left whole. */
static bool
pick_full_block(const struct wal *w, struct rng *rng, uint32_t *rec, uint32_t *upto)
{
    uint64_t last_start = w->len / WAL_BLOCK * WAL_BLOCK;
    uint32_t cand[WAL_RECORDS], n = 0;
    for (uint32_t i = 1; i + 1 < w->n; i++)
        if (w->recs[i].end <= last_start && w->recs[i].start / WAL_BLOCK + 1 < w->len / WAL_BLOCK)
            cand[n++] = i;
    if (n == 0) return false;
    *rec = cand[rng_below(rng, n)];
    *upto = w->n - 1;
    return true;
}

/* A cut after record `upto` whose last, partial block holds the start of an earlier record. */
static bool
pick_last_block(const struct wal *w, struct rng *rng, uint32_t *rec, uint32_t *upto)
{
    for (uint32_t tries = 0; tries < 4 * w->n; tries++) {
        uint32_t j = w->n / 2 + rng_below(rng, w->n - w->n / 2);
        uint64_t end = w->recs[j].end, block = end / WAL_BLOCK * WAL_BLOCK;
        if (end % WAL_BLOCK == 0) continue; /* a full last block: not the case looked for */
        uint32_t first = j;
        while (first > 1 && w->recs[first - 1].start >= block)
            first--;
        if (first == j) continue;
        *rec = first + rng_below(rng, j - first);
        *upto = j;
        return true;
    }
    return false;
}

static void
damage_middle(const trastenda_store_config *cfg, const char *src, const struct wal *w,
              struct rng *rng, const char *mode)
{
    for (uint32_t i = 0; i < FLIPS + 2; i++) {
        uint32_t rec = w->n / 4 + rng_below(rng, w->n / 2);
        const struct wal_rec *r = &w->recs[rec];
        bool crc = i >= FLIPS;
        uint64_t off = crc ? r->start + rng_below(rng, 4)
                           : r->start + WAL_HEADER + rng_below(rng, r->first_len);
        check_flip(cfg, src, w, rec, off, crc ? "checksum" : "data", mode);
    }
    for (int last = 0; last < 2; last++) {
        uint32_t rec, upto;
        bool found =
            last ? pick_last_block(w, rng, &rec, &upto) : pick_full_block(w, rng, &rec, &upto);
        PT_CHECK(found, "%s: no record to damage %s", mode,
                 last ? "in a last block" : "in a full block");
        observe_header(cfg, src, w, rec, upto, LENGTH_PAST_BLOCK, mode);
        observe_header(cfg, src, w, rec, upto, HEADER_ZEROED, mode);
    }
}

static void
cuts(const trastenda_store_config *cfg, const char *src, const struct wal *w, struct rng *rng,
     const char *mode)
{
    const struct wal_rec *last = &w->recs[w->n - 1];
    PT_CHECK(last->end == w->len, "the WAL has %zu bytes after its last record",
             (size_t)(w->len - last->end));
    uint32_t k = 0;
    check_cut(cfg, src, w, last->start, false, mode);
    check_cut(cfg, src, w, last->end - 1, true, mode);
    for (uint32_t i = 0; i < CUTS_LAST; i++) {
        uint64_t cut = last->start + 1 + rng_below(rng, (uint32_t)(last->end - last->start - 1));
        check_cut(cfg, src, w, cut, ++k % CRASH_EVERY == 0, mode);
    }
    for (uint32_t i = 0; i < CUTS_ANY; i++) {
        uint64_t from = w->recs[0].end;
        uint64_t cut = from + rng_below(rng, (uint32_t)(w->len - from));
        check_cut(cfg, src, w, cut, ++k % CRASH_EVERY == 0, mode);
    }
}

int
main(void)
{
    pt_init("plain_torn_tail");
    uint64_t seed = pt_seed();
    struct rng rng = {seed};
    int64_t t0 = pt_now_ms();
    static struct wal w;
    for (int m = 0; m < 2; m++) {
        trastenda_durability durability =
            m ? TRASTENDA_DURABILITY_FSYNC : TRASTENDA_DURABILITY_ASYNC;
        const char *mode = m ? "fsync" : "async";
        char dir[PT_PATH_BYTES];
        st_tmpdir(dir, sizeof(dir), "torn");
        pt_dir_add(dir);
        trastenda_store_config cfg;
        config(&cfg, dir, durability);
        write_batches(&cfg, seed + (uint64_t)m);
        wal_load(&w, dir);
        if (getenv("TS_TEST_LOG") != NULL)
            fprintf(stderr, "%s: %s: %zu bytes, %u records\n", mode, w.path, w.len, w.n);
        cuts(&cfg, dir, &w, &rng, mode);
        damage_middle(&cfg, dir, &w, &rng, mode);
        free(w.bytes);
        pt_dir_remove(dir);
    }
    fprintf(stderr,
            "plain_torn_tail: torn tails recovered the last complete batch, mid-WAL flips were "
            "refused; %u header damages silently dropped acknowledged batches (see 'observed'); "
            "%.1f s\n",
            observed_losses, (double)(pt_now_ms() - t0) / 1000.0);
    pt_cleanup();
    return 0;
}
