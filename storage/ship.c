/*
 * storage/ship.c - checkpoints as files to stream, for a follower's bootstrap
 * (include/trastenda/storage.h, docs/REPLICATION.md).
 *
 * The leader takes a checkpoint of its running store (trastenda_store_checkpoint: hard links on the
 * same filesystem, so it costs little), lists its files, and serves them in chunks; the follower
 * writes them into a staging directory next to its data directory, fsyncs them, and swaps the
 * staging directory in for the data directory (trastenda_snapshot_install). A follower killed
 * during the download starts the download again: its old data directory is untouched until the
 * swap, and the swap is two renames.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sys.h"
#include "trastenda/storage.h"

#define NAME_BYTES 512

struct snap_file {
    char name[NAME_BYTES]; /* relative to the snapshot's directory */
    uint64_t size;
};

struct trastenda_snapshot {
    char dir[NAME_BYTES];
    uint64_t seq, total;
    struct snap_file *files;
    size_t n, cap;
};

int
trastenda_rmtree(const char *path)
{
    struct stat sb;
    if (lstat(path, &sb) != 0) return errno == ENOENT ? 0 : errno;
    if (!S_ISDIR(sb.st_mode)) return unlink(path) == 0 ? 0 : errno;
    DIR *d = opendir(path);
    if (d == NULL) return errno;
    int rc = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) continue;
        char sub[2 * NAME_BYTES];
        snprintf(sub, sizeof(sub), "%s/%s", path, de->d_name);
        int e = trastenda_rmtree(sub);
        if (e != 0 && rc == 0) rc = e;
    }
    closedir(d);
    if (rmdir(path) != 0 && rc == 0) rc = errno;
    return rc;
}

/* Adds the regular files under dir/rel to s, in readdir order. */
static int
list_files(trastenda_snapshot *s, const char *rel)
{
    char path[2 * NAME_BYTES];
    snprintf(path, sizeof(path), "%s%s%s", s->dir, rel[0] ? "/" : "", rel);
    DIR *d = opendir(path);
    if (d == NULL) return errno;
    int rc = 0;
    struct dirent *de;
    while (rc == 0 && (de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) continue;
        char name[NAME_BYTES];
        int w = snprintf(name, sizeof(name), "%s%s%s", rel, rel[0] ? "/" : "", de->d_name);
        if (w < 0 || (size_t)w >= sizeof(name)) {
            rc = ENAMETOOLONG;
            break;
        }
        char full[2 * NAME_BYTES];
        snprintf(full, sizeof(full), "%s/%s", s->dir, name);
        struct stat sb;
        if (lstat(full, &sb) != 0) {
            rc = errno;
            break;
        }
        if (S_ISDIR(sb.st_mode)) {
            rc = list_files(s, name);
            continue;
        }
        if (!S_ISREG(sb.st_mode)) continue;
        if (!sys_grow((void **)&s->files, &s->cap, s->n + 1, sizeof(*s->files))) {
            rc = ENOMEM;
            break;
        }
        struct snap_file *f = &s->files[s->n++];
        snprintf(f->name, sizeof(f->name), "%s", name);
        f->size = (uint64_t)sb.st_size;
        s->total += f->size;
    }
    closedir(d);
    return rc;
}

trastenda_err
trastenda_snapshot_create(trastenda_store *st, const char *dir, trastenda_snapshot **out, char *err,
                          size_t errlen)
{
    *out = NULL;
    if (strlen(dir) >= NAME_BYTES - 64) {
        snprintf(err, errlen, "%s: path too long", dir);
        return TRASTENDA_E_INVALID;
    }
    trastenda_snapshot *s = calloc(1, sizeof(*s));
    if (s == NULL) return TRASTENDA_E_NOMEM;
    snprintf(s->dir, sizeof(s->dir), "%s", dir);
    (void)trastenda_rmtree(dir); /* a leftover of an earlier run */
    trastenda_err code = trastenda_store_checkpoint(st, dir, &s->seq, err, errlen);
    if (code == TRASTENDA_OK) {
        int e = list_files(s, "");
        if (e != 0) {
            snprintf(err, errlen, "%s: cannot list the checkpoint: %s", dir, strerror(e));
            code = TRASTENDA_E_IO;
        }
    }
    if (code != TRASTENDA_OK) {
        trastenda_snapshot_remove(s);
        return code;
    }
    *out = s;
    return TRASTENDA_OK;
}

uint64_t
trastenda_snapshot_seq(const trastenda_snapshot *s)
{
    return s->seq;
}

uint64_t
trastenda_snapshot_total(const trastenda_snapshot *s)
{
    return s->total;
}

uint32_t
trastenda_snapshot_files(const trastenda_snapshot *s)
{
    return (uint32_t)s->n;
}

const char *
trastenda_snapshot_file(const trastenda_snapshot *s, uint32_t i, uint64_t *size)
{
    if (i >= s->n) return NULL;
    *size = s->files[i].size;
    return s->files[i].name;
}

trastenda_err
trastenda_snapshot_read(const trastenda_snapshot *s, uint32_t i, uint64_t off, void *buf,
                        size_t cap, size_t *got)
{
    *got = 0;
    if (i >= s->n || off > s->files[i].size) return TRASTENDA_E_INVALID;
    char path[2 * NAME_BYTES];
    snprintf(path, sizeof(path), "%s/%s", s->dir, s->files[i].name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return TRASTENDA_E_IO;
    uint64_t left = s->files[i].size - off;
    size_t want = left < cap ? (size_t)left : cap;
    trastenda_err code = TRASTENDA_OK;
    while (*got < want) {
        ssize_t r = pread(fd, (uint8_t *)buf + *got, want - *got, (off_t)(off + *got));
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            code = TRASTENDA_E_IO;
            break;
        }
        *got += (size_t)r;
    }
    close(fd);
    return code;
}

void
trastenda_snapshot_remove(trastenda_snapshot *s)
{
    if (s == NULL) return;
    if (s->dir[0] != '\0') (void)trastenda_rmtree(s->dir);
    free(s->files);
    free(s);
}

/* ---- the follower's side ---- */

static int
fsync_path(const char *path, int flags)
{
    int fd = open(path, flags | O_CLOEXEC);
    if (fd < 0) return errno;
    int rc = fsync(fd) == 0 ? 0 : errno;
    close(fd);
    return rc;
}

trastenda_err
trastenda_snapshot_write(const char *staging, const char *name, uint64_t off, const void *data,
                         size_t len, char *err, size_t errlen)
{
    if (name[0] == '/' || strstr(name, "..") != NULL) {
        snprintf(err, errlen, "snapshot file name %.200s leaves the directory", name);
        return TRASTENDA_E_INVALID;
    }
    char path[2 * NAME_BYTES];
    snprintf(path, sizeof(path), "%s/%s", staging, name);
    char *slash = strrchr(path, '/');
    *slash = '\0';
    int e = sys_mkdirs(path);
    *slash = '/';
    if (e != 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(e));
        return TRASTENDA_E_IO;
    }
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | (off == 0 ? O_TRUNC : 0), 0644);
    if (fd < 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return TRASTENDA_E_IO;
    }
    size_t done = 0;
    while (done < len) {
        ssize_t w = pwrite(fd, (const uint8_t *)data + done, len - done, (off_t)(off + done));
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            snprintf(err, errlen, "%s: %s", path, strerror(errno));
            close(fd);
            return TRASTENDA_E_IO;
        }
        done += (size_t)w;
    }
    close(fd);
    return TRASTENDA_OK;
}

/* fsyncs every file and directory under path. */
static int
fsync_tree(const char *path)
{
    DIR *d = opendir(path);
    if (d == NULL) return errno;
    int rc = 0;
    struct dirent *de;
    while (rc == 0 && (de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) continue;
        char sub[2 * NAME_BYTES];
        snprintf(sub, sizeof(sub), "%s/%s", path, de->d_name);
        struct stat sb;
        if (lstat(sub, &sb) != 0) {
            rc = errno;
            break;
        }
        rc = S_ISDIR(sb.st_mode) ? fsync_tree(sub) : fsync_path(sub, O_RDONLY);
    }
    closedir(d);
    if (rc == 0) rc = fsync_path(path, O_RDONLY | O_DIRECTORY);
    return rc;
}

/* The directory that holds path ("." when none). */
static void
parent_of(const char *path, char *out, size_t cap)
{
    snprintf(out, cap, "%s", path);
    char *slash = strrchr(out, '/');
    if (slash == NULL)
        snprintf(out, cap, ".");
    else if (slash == out)
        out[1] = '\0';
    else
        *slash = '\0';
}

/* After the rename that put the new data in place: the rename made durable, the old data gone. */
static void
swap_settle(const char *dir, const char *old)
{
    char parent[2 * NAME_BYTES];
    parent_of(dir, parent, sizeof(parent));
    (void)fsync_path(parent, O_RDONLY | O_DIRECTORY);
    (void)trastenda_rmtree(old);
}

trastenda_err
trastenda_snapshot_recover(const char *staging, const char *dir, bool *finished, char *err,
                           size_t errlen)
{
    *finished = false;
    char old[2 * NAME_BYTES];
    snprintf(old, sizeof(old), "%s.old", dir);
    struct stat sb;
    if (stat(dir, &sb) == 0 || errno != ENOENT) return TRASTENDA_OK;
    if (stat(old, &sb) != 0 || !S_ISDIR(sb.st_mode)) return TRASTENDA_OK;
    if (stat(staging, &sb) != 0 || !S_ISDIR(sb.st_mode)) return TRASTENDA_OK;
    /* A download is complete once its LEADER is written (the last file before the swap): a
     * partial one beside an old leftover (a data directory deleted by hand) is not installed. */
    char marker[2 * NAME_BYTES];
    snprintf(marker, sizeof(marker), "%s/LEADER", staging);
    if (stat(marker, &sb) != 0) return TRASTENDA_OK;
    /* install renames dir away only once staging is synced whole: staging is the new data. */
    if (rename(staging, dir) != 0) {
        snprintf(err, errlen, "%s: cannot finish the swap of a downloaded checkpoint: %s", dir,
                 strerror(errno));
        return TRASTENDA_E_IO;
    }
    swap_settle(dir, old);
    *finished = true;
    return TRASTENDA_OK;
}

trastenda_err
trastenda_snapshot_install(const char *staging, const char *dir, char *err, size_t errlen)
{
    int e = fsync_tree(staging);
    if (e != 0) {
        snprintf(err, errlen, "%s: cannot sync the downloaded files: %s", staging, strerror(e));
        return TRASTENDA_E_IO;
    }
    char old[2 * NAME_BYTES];
    snprintf(old, sizeof(old), "%s.old", dir);
    (void)trastenda_rmtree(old);
    if (rename(dir, old) != 0 && errno != ENOENT) {
        snprintf(err, errlen, "%s: cannot move the old data aside: %s", dir, strerror(errno));
        return TRASTENDA_E_IO;
    }
    if (rename(staging, dir) != 0) {
        snprintf(err, errlen, "%s: cannot put the snapshot in place: %s", dir, strerror(errno));
        (void)rename(old, dir);
        return TRASTENDA_E_IO;
    }
    swap_settle(dir, old);
    return TRASTENDA_OK;
}
