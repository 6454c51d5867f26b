/*
 * storage/db.h - the two RocksDB databases of a data directory and their key layout.
 *
 *   log/    'F' -> format record; 'L' + u64 big-endian seq -> log entry (docs/LOG.md)
 *   state/  'F' -> format record; 'M' -> materialized meta (u64 seq, i64 time_ms, u64 epoch,
 *           u32 slots a page, little-endian; 24 bytes, without the last, for pages of 256
 *           slots, as before 2026-11-29); 'P' + u8 table (position in trastenda_image_tables) +
 *           u32 big-endian page -> page (engine.h, "Images")
 *
 * The format record is "TSDB", u8 kind (1 log, 2 state), u16 version (little-endian). A database
 * without it that holds anything else is another program's and is refused; so is another version,
 * with a message saying which (version 1 held log entries and pages of format 1).
 */
#ifndef TRASTENDA_STORAGE_DB_H
#define TRASTENDA_STORAGE_DB_H

#include <rocksdb/c.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "trastenda.h"

#define DB_FORMAT_VERSION     2 /* 2: log entries and pages in format 2 (docs/LOG.md) */
#define DB_LOG_KEY_BYTES      9
#define DB_PAGE_KEY_BYTES     6
#define DB_META_BYTES         28 /* u64 seq, i64 time_ms, u64 epoch, u32 page slots */
#define DB_META_BYTES_V1      24 /* without the page size: pages of DB_META_PAGE_SLOTS_V1 slots */
#define DB_META_PAGE_SLOTS_V1 256

/* Each database's table-file writes (flushes, compactions) are paced at this rate, in refills of
 * this period; the log's own appends are not. */
#define DB_FILES_BYTES_PER_S (512ll << 20)
#define DB_REFILL_US         5000

enum db_kind {
    DB_LOG = 1,
    DB_STATE = 2
};

struct db {
    rocksdb_t *db;
    rocksdb_options_t *opts;
    rocksdb_writeoptions_t *wsync, *wnosync;
    rocksdb_writeoptions_t *wnowal; /* memtable only: durable once flushed (fwait) */
    rocksdb_flushoptions_t *fwait;
    rocksdb_readoptions_t *ro;
    bool created; /* the format record was written by this open */
};

/* Opens (creating, unless read_only) the database at path; a clear message in err on failure. */
trastenda_err db_open(struct db *d, const char *path, enum db_kind kind, bool read_only, char *err,
                      size_t errlen);
void db_close(struct db *d);

void db_log_key(uint8_t k[DB_LOG_KEY_BYTES], uint64_t seq);
uint64_t db_log_key_seq(const char *k, size_t len); /* 0 when not a log key */
void db_page_key(uint8_t k[DB_PAGE_KEY_BYTES], uint8_t table, uint32_t page);
/* The page number of a page key (DB_PAGE_KEY_BYTES long). */
uint32_t db_page_key_page(const uint8_t *k);

/* A RocksDB error string into err (and frees it); returns E_CORRUPT for corruption, else E_IO. */
trastenda_err db_error(char *rerr, const char *what, char *err, size_t errlen);

#endif /* TRASTENDA_STORAGE_DB_H */
