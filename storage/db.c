/*
 * storage/db.c - opening the log and state databases: options, the format record, the keys.
 *
 * The WAL recovery mode is chosen deliberately: kTolerateCorruptedTailRecords. A record torn by a
 * crash in the middle of a write (the tail of the last WAL file) is dropped: it was never
 * acknowledged, since acknowledgement waits for the write to return. A bad checksum or length
 * elsewhere makes the open fail with a corruption error, rather than RocksDB's default
 * point-in-time recovery silently dropping everything after the first bad record. One blind spot
 * (measured, docs/STORAGE.md): a damaged record header in the newest WAL's last, partial block
 * looks like a torn write and is dropped with what follows; a crash cannot cause it in fsync mode
 * (those bytes were synced before the acknowledgement), media corruption can.
 */
#include "db.h"

#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "sys.h"

#define WAL_TOLERATE_CORRUPTED_TAIL_RECORDS 0

static const char FORMAT_KEY[] = "F";

trastenda_err
db_error(char *rerr, const char *what, char *err, size_t errlen)
{
    const char *m = rerr != NULL ? rerr : "unknown error";
    trastenda_err code = strstr(m, "Corruption") != NULL ? TRASTENDA_E_CORRUPT : TRASTENDA_E_IO;
    snprintf(err, errlen, "%s: %s", what, m);
    rocksdb_free(rerr);
    return code;
}

void
db_log_key(uint8_t k[DB_LOG_KEY_BYTES], uint64_t seq)
{
    k[0] = 'L';
    for (int i = 0; i < 8; i++)
        k[1 + i] = (uint8_t)(seq >> (56 - 8 * i));
}

uint64_t
db_log_key_seq(const char *k, size_t len)
{
    if (len != DB_LOG_KEY_BYTES || k[0] != 'L') return 0;
    uint64_t seq = 0;
    for (int i = 0; i < 8; i++)
        seq = seq << 8 | (uint8_t)k[1 + i];
    return seq;
}

void
db_page_key(uint8_t k[DB_PAGE_KEY_BYTES], uint8_t table, uint32_t page)
{
    k[0] = 'P';
    k[1] = table;
    for (int i = 0; i < 4; i++)
        k[2 + i] = (uint8_t)(page >> (24 - 8 * i));
}

uint32_t
db_page_key_page(const uint8_t *k)
{
    return (uint32_t)k[2] << 24 | (uint32_t)k[3] << 16 | (uint32_t)k[4] << 8 | k[5];
}

static void
options_set(rocksdb_options_t *o, enum db_kind kind)
{
    rocksdb_options_set_create_if_missing(o, 1);
    rocksdb_options_set_paranoid_checks(o, 1);
    rocksdb_options_set_wal_recovery_mode(o, WAL_TOLERATE_CORRUPTED_TAIL_RECORDS);
    rocksdb_options_set_compression(o, rocksdb_no_compression);
    rocksdb_options_set_max_background_jobs(o, 2);
    rocksdb_options_set_keep_log_file_num(o, 2);
    rocksdb_options_set_info_log_level(o, 2); /* RocksDB's own LOG file: warnings and up */
    /* The log takes one put per batch, large ones under load; the state takes pages. */
    rocksdb_options_set_write_buffer_size(o, kind == DB_LOG ? 64u << 20 : 32u << 20);
    rocksdb_options_set_max_write_buffer_number(o, 3);
    /* The state takes, once an interval, every page that changed: under writes spread over a
     * large table that is most of the state each time, a table file whose keys span the whole
     * key range. Levelled compaction merged each such file with the whole of level 1 (the state
     * again); size-tiered ("universal") merges runs of about equal size, so a page is rewritten
     * a few times rather than once per file. Single reserves over 1,000,000 SKUs, two runs of
     * 22 s: compaction CPU 6.2 / 7.1 -> 3.0 / 2.7 s, 15% fewer bytes written, +13% / +15%
     * reserves/s (docs/BENCHMARKS.md, "Pages and compaction of the state"). Its
     * cost: the directory may hold up to 3x the live state between full compactions. The log's
     * keys only grow and are cut from the front (one range delete): left levelled, where the
     * same run with both databases universal saved no more compaction. */
    if (kind == DB_STATE) rocksdb_options_set_compaction_style(o, rocksdb_universal_compaction);
    /* Table files are written in bursts of tens of MB (the state: every changed page, once a
     * second, made durable by a flush; the log: its memtable when full): they are written back as
     * they grow and paced, so that the log's fsync on the same disk does not queue behind a whole
     * burst. */
    rocksdb_options_set_bytes_per_sync(o, 1u << 20);
    rocksdb_ratelimiter_t *rl = rocksdb_ratelimiter_create(DB_FILES_BYTES_PER_S, DB_REFILL_US, 10);
    rocksdb_options_set_ratelimiter(o, rl); /* the options keep their own reference */
    rocksdb_ratelimiter_destroy(rl);
}

static trastenda_err
format_check(struct db *d, const char *path, enum db_kind kind, bool read_only, char *err,
             size_t errlen)
{
    char *rerr = NULL;
    size_t vlen = 0;
    char *v = rocksdb_get(d->db, d->ro, FORMAT_KEY, 1, &vlen, &rerr);
    if (rerr != NULL) return db_error(rerr, path, err, errlen);
    const char *what = kind == DB_LOG ? "log" : "state";
    if (v == NULL) {
        /* Empty: ours to format. Anything in it: another program's database. */
        rocksdb_iterator_t *it = rocksdb_create_iterator(d->db, d->ro);
        rocksdb_iter_seek_to_first(it);
        bool any = rocksdb_iter_valid(it);
        rocksdb_iter_destroy(it);
        if (read_only) {
            if (any)
                snprintf(err, errlen,
                         "%s: a RocksDB database without Trastenda's format record: another "
                         "program's data",
                         path);
            else
                snprintf(err, errlen, "%s: an empty database, not a Trastenda %s", path, what);
            return TRASTENDA_E_CORRUPT;
        }
        if (any) {
            snprintf(err, errlen,
                     "%s: a RocksDB database without Trastenda's format record: another "
                     "program's data, refused",
                     path);
            return TRASTENDA_E_CORRUPT;
        }
        uint8_t rec[7] = {
            'T', 'S', 'D', 'B', (uint8_t)kind, DB_FORMAT_VERSION & 0xff, DB_FORMAT_VERSION >> 8};
        rocksdb_put(d->db, d->wsync, FORMAT_KEY, 1, (const char *)rec, sizeof(rec), &rerr);
        if (rerr != NULL) return db_error(rerr, path, err, errlen);
        d->created = true;
        return TRASTENDA_OK;
    }
    trastenda_err code = TRASTENDA_OK;
    if (vlen != 7 || memcmp(v, "TSDB", 4) != 0) {
        snprintf(err, errlen, "%s: not a Trastenda database (bad format record)", path);
        code = TRASTENDA_E_CORRUPT;
    } else if ((uint8_t)v[4] != kind) {
        snprintf(err, errlen, "%s: a Trastenda database of another kind where the %s belongs", path,
                 what);
        code = TRASTENDA_E_CORRUPT;
    } else {
        unsigned version = (uint8_t)v[5] | (unsigned)(uint8_t)v[6] << 8;
        if (version > DB_FORMAT_VERSION) {
            snprintf(err, errlen,
                     "%s: written by storage format version %u; this build reads up to version "
                     "%u: run a newer Trastenda",
                     path, version, DB_FORMAT_VERSION);
            code = TRASTENDA_E_CORRUPT;
        } else if (version < DB_FORMAT_VERSION) {
            snprintf(err, errlen,
                     "%s: written by storage format version %u (log entries of format %u), which "
                     "this build (version %u) no longer reads: open it with the build that wrote "
                     "it, or start this one on an empty data directory (docs/STORAGE.md)",
                     path, version, version, DB_FORMAT_VERSION);
            code = TRASTENDA_E_CORRUPT;
        }
    }
    rocksdb_free(v);
    return code;
}

/* RocksDB's start-up files: its info log, lock, identity, manifest, options, temporary files. */
static bool
startup_file(const char *name)
{
    static const char *const prefixes[] = {"LOG", "LOCK", "IDENTITY", "MANIFEST-", "OPTIONS-"};
    for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++)
        if (strncmp(name, prefixes[i], strlen(prefixes[i])) == 0) return true;
    size_t n = strlen(name);
    return n > 6 && strcmp(name + n - 6, ".dbtmp") == 0;
}

/*
 * A directory without CURRENT that holds only start-up files (no table file, no WAL: nothing
 * written through it) is an interrupted creation: removes those files, true. false when anything
 * else is there.
 */
static bool
startup_leftovers_clear(const char *path)
{
    DIR *d = opendir(path);
    if (d == NULL) return false;
    struct dirent *de;
    bool only = true;
    while (only && (de = readdir(d)) != NULL)
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
            only = startup_file(de->d_name);
    if (only) {
        rewinddir(d);
        while ((de = readdir(d)) != NULL) {
            if (!startup_file(de->d_name)) continue;
            char f[4400];
            snprintf(f, sizeof(f), "%.4096s/%.255s", path, de->d_name);
            if (unlink(f) != 0) only = false;
        }
    }
    closedir(d);
    return only;
}

trastenda_err
db_open(struct db *d, const char *path, enum db_kind kind, bool read_only, char *err, size_t errlen)
{
    memset(d, 0, sizeof(*d));
    char current[4200];
    snprintf(current, sizeof(current), "%s/CURRENT", path);
    /* RocksDB would happily create a database among someone else's files. A creation that was
     * interrupted (killed before RocksDB wrote CURRENT) leaves only RocksDB's own start-up files:
     * nothing was ever acknowledged from it, so it is cleared and created again. */
    if (!read_only && sys_dir_nonempty(path) && !sys_file_exists(current)) {
        if (!startup_leftovers_clear(path)) {
            snprintf(err, errlen, "%s: the directory holds files but no RocksDB database: refused",
                     path);
            return TRASTENDA_E_CORRUPT;
        }
    }
    if (read_only && !sys_file_exists(current)) {
        snprintf(err, errlen, "%s: no database here", path);
        return TRASTENDA_E_IO;
    }
    int e = read_only ? 0 : sys_mkdirs(path);
    if (e != 0) {
        snprintf(err, errlen, "%s: cannot create the directory: %s", path, strerror(e));
        return TRASTENDA_E_IO;
    }
    d->opts = rocksdb_options_create();
    options_set(d->opts, kind);
    d->wsync = rocksdb_writeoptions_create();
    rocksdb_writeoptions_set_sync(d->wsync, 1);
    d->wnosync = rocksdb_writeoptions_create();
    rocksdb_writeoptions_set_sync(d->wnosync, 0);
    d->wnowal = rocksdb_writeoptions_create();
    rocksdb_writeoptions_disable_WAL(d->wnowal, 1);
    d->fwait = rocksdb_flushoptions_create();
    rocksdb_flushoptions_set_wait(d->fwait, 1);
    d->ro = rocksdb_readoptions_create();
    rocksdb_readoptions_set_verify_checksums(d->ro, 1);
    char *rerr = NULL;
    d->db = read_only ? rocksdb_open_for_read_only(d->opts, path, 0, &rerr)
                      : rocksdb_open(d->opts, path, &rerr);
    if (rerr != NULL) {
        trastenda_err code = db_error(rerr, path, err, errlen);
        db_close(d);
        return code;
    }
    trastenda_err code = format_check(d, path, kind, read_only, err, errlen);
    if (code != TRASTENDA_OK) db_close(d);
    return code;
}

void
db_close(struct db *d)
{
    if (d->db != NULL) rocksdb_close(d->db);
    if (d->opts != NULL) rocksdb_options_destroy(d->opts);
    if (d->wsync != NULL) rocksdb_writeoptions_destroy(d->wsync);
    if (d->wnosync != NULL) rocksdb_writeoptions_destroy(d->wnosync);
    if (d->wnowal != NULL) rocksdb_writeoptions_destroy(d->wnowal);
    if (d->fwait != NULL) rocksdb_flushoptions_destroy(d->fwait);
    if (d->ro != NULL) rocksdb_readoptions_destroy(d->ro);
    memset(d, 0, sizeof(*d));
}
