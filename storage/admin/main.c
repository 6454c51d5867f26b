/*
 * storage/admin/main.c - trastenda-admin: offline operations on data directories.
 *
 *   trastenda-admin verify DIR              check a data directory or checkpoint, change nothing
 *   trastenda-admin restore BACKUP DIR      verify a checkpoint, copy it into a new data
 *                                           directory, verify the copy
 *
 * A checkpoint of a running node is taken with trastenda_store_checkpoint() (the server's backup
 * operation). Exit codes: 0 ok, 1 the directory is damaged or inconsistent, 2 usage or I/O error.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "trastenda/storage.h"

static int
usage(void)
{
    fprintf(stderr, "usage: trastenda-admin verify DIR\n"
                    "       trastenda-admin restore BACKUP DIR\n");
    return 2;
}

static int
verify_here(const char *dir, bool quiet)
{
    trastenda_verify_report rep;
    char err[1024];
    trastenda_err code = trastenda_store_verify(dir, NULL, &rep, err, sizeof(err));
    if (code != TRASTENDA_OK) {
        fprintf(stderr, "trastenda-admin: %s: %s (%s)\n", dir, err, trastenda_err_name(code));
        return code == TRASTENDA_E_CORRUPT ? 1 : 2;
    }
    if (!quiet)
        printf("%s: ok\n"
               "  state:  materialized at entry %" PRIu64 ", %" PRIu64 " records\n"
               "  log:    entries %" PRIu64 "..%" PRIu64 " (%" PRIu64 " entries, %" PRIu64
               " bytes), %" PRIu64 " replayed on the state\n"
               "  result: entry %" PRIu64 ", %" PRIu64 " stock records, digest %016" PRIx64
               ", every invariant holds\n",
               dir, rep.state_seq, rep.state_records, rep.log_first, rep.log_last, rep.log_entries,
               rep.log_bytes, rep.replayed, rep.seq, rep.stock_records, rep.digest);
    return 0;
}

/* Verifies in a child process: the engine's invariant check aborts on a broken invariant (its
 * message on stderr), and reading a damaged directory must not take this program down with it.
 * A child killed by a signal means the directory is damaged or inconsistent: exit code 1. */
static int
verify(const char *dir, bool quiet)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "trastenda-admin: fork: %s\n", strerror(errno));
        return 2;
    }
    if (pid == 0) _exit(verify_here(dir, quiet));
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR) {
            fprintf(stderr, "trastenda-admin: waitpid: %s\n", strerror(errno));
            return 2;
        }
    if (WIFEXITED(st)) return WEXITSTATUS(st);
    fprintf(stderr,
            "trastenda-admin: %s: the check stopped with signal %d (%s): an invariant does not "
            "hold, or the data cannot be read: damaged or inconsistent\n",
            dir, WTERMSIG(st), strsignal(WTERMSIG(st)));
    return 1;
}

/* Copies the regular files of src into dst (created), one directory level. */
static int
copy_dir(const char *src, const char *dst)
{
    if (mkdir(dst, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "trastenda-admin: %s: %s\n", dst, strerror(errno));
        return 2;
    }
    DIR *d = opendir(src);
    if (d == NULL) {
        fprintf(stderr, "trastenda-admin: %s: %s\n", src, strerror(errno));
        return 2;
    }
    struct dirent *de;
    int rc = 0;
    while (rc == 0 && (de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.') continue;
        char from[4400], to[4400];
        if (strlen(src) > 4096 || strlen(dst) > 4096) return 2;
        snprintf(from, sizeof(from), "%.4096s/%.255s", src, de->d_name);
        snprintf(to, sizeof(to), "%.4096s/%.255s", dst, de->d_name);
        struct stat sb;
        if (stat(from, &sb) != 0 || !S_ISREG(sb.st_mode)) continue;
        int in = open(from, O_RDONLY), out = open(to, O_WRONLY | O_CREAT | O_EXCL, 0644);
        if (in < 0 || out < 0) {
            fprintf(stderr, "trastenda-admin: copying %s: %s\n", from, strerror(errno));
            rc = 2;
        }
        char buf[1 << 16];
        ssize_t n;
        while (rc == 0 && (n = read(in, buf, sizeof(buf))) > 0)
            if (write(out, buf, (size_t)n) != n) rc = 2;
        if (rc == 0 && fsync(out) != 0) rc = 2;
        if (in >= 0) close(in);
        if (out >= 0) close(out);
        if (rc != 0) fprintf(stderr, "trastenda-admin: writing %s failed\n", to);
    }
    closedir(d);
    return rc;
}

static int
restore(const char *backup, const char *dir)
{
    int rc = verify(backup, true);
    if (rc != 0) return rc;
    struct stat sb;
    if (stat(dir, &sb) == 0) {
        DIR *d = opendir(dir);
        struct dirent *de;
        bool empty = true;
        while (d != NULL && (de = readdir(d)) != NULL)
            if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0) empty = false;
        if (d != NULL) closedir(d);
        if (!empty) {
            fprintf(stderr, "trastenda-admin: %s is not empty: restore into a new directory\n",
                    dir);
            return 2;
        }
    } else if (mkdir(dir, 0755) != 0) {
        fprintf(stderr, "trastenda-admin: %s: %s\n", dir, strerror(errno));
        return 2;
    }
    const char *parts[] = {"state", "log"};
    for (int i = 0; i < 2 && rc == 0; i++) {
        char from[4200], to[4200];
        snprintf(from, sizeof(from), "%.4096s/%s", backup, parts[i]);
        snprintf(to, sizeof(to), "%.4096s/%s", dir, parts[i]);
        rc = copy_dir(from, to);
    }
    if (rc != 0) return rc;
    rc = verify(dir, false);
    if (rc == 0) printf("restored %s into %s: start the node on it\n", backup, dir);
    return rc;
}

int
main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "verify") == 0) return verify(argv[2], false);
    if (argc == 4 && strcmp(argv[1], "restore") == 0) return restore(argv[2], argv[3]);
    return usage();
}
