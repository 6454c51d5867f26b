/*
 * net/cmd/import.c - `trastenda-cli import`: the spreadsheets a shop already has, as CSV.
 *
 *   locations: id,name,lat,lon,priority,channels   (lat/lon in degrees; channels "web;store")
 *   skus:      id,name,reorder_point,reorder_qty,lead_days,safety_stock
 *   stock:     sku,location,on_hand
 *
 * The first line is the header; columns may come in any order, only the id columns (and on_hand)
 * are required. Rows become location.upsert, sku.upsert and count operations - all idempotent,
 * so running an import twice leaves the same state. Rows are sent in batches; every rejected row
 * is reported with its file, line number and reason. --dry-run checks the files without sending.
 *
 * `trastenda-cli export` writes the tables back in the same columns (stock with every quantity
 * after on_hand), page by page (location.list, sku.list, stock.list).
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mp.h"
#include "trastenda/client.h"

#define COLS_MAX  16
#define FIELD_MAX 256

struct row {
    char f[COLS_MAX][FIELD_MAX];
    int n;
};

/* Reads one CSV record (quotes with "" escapes; a quoted field may not span lines). */
static bool
csv_read(FILE *fp, struct row *r, long *line)
{
    char buf[8192];
    if (fgets(buf, sizeof(buf), fp) == NULL) return false;
    (*line)++;
    r->n = 0;
    char *p = buf;
    for (;;) {
        char *out = r->f[r->n];
        size_t len = 0;
        if (*p == '"') {
            p++;
            while (*p && !(*p == '"' && p[1] != '"')) {
                if (*p == '"') p++;
                if (len + 1 < FIELD_MAX) out[len++] = *p;
                p++;
            }
            if (*p == '"') p++;
        }
        while (*p && *p != ',' && *p != '\n' && *p != '\r') {
            if (len + 1 < FIELD_MAX) out[len++] = *p;
            p++;
        }
        out[len] = '\0';
        if (r->n < COLS_MAX) r->n++;
        if (*p != ',') break;
        p++;
    }
    return true;
}

static int
col(const struct row *hdr, const char *name)
{
    for (int i = 0; i < hdr->n; i++)
        if (strcmp(hdr->f[i], name) == 0) return i;
    return -1;
}

static bool
parse_int(const char *s, int64_t *v)
{
    if (*s == '\0') return false;
    char *end;
    long long x = strtoll(s, &end, 10);
    if (*end != '\0') return false;
    *v = x;
    return true;
}

/* "42.878212" -> 42878212 micro-degrees, without floating point. */
static bool
parse_deg(const char *s, int64_t *e6)
{
    bool neg = *s == '-';
    if (*s == '-' || *s == '+') s++;
    int64_t whole = 0, frac = 0;
    int digits = 0;
    if (*s < '0' || *s > '9') return false;
    while (*s >= '0' && *s <= '9')
        whole = whole * 10 + (*s++ - '0');
    if (*s == '.') {
        s++;
        while (*s >= '0' && *s <= '9') {
            if (digits < 6) {
                frac = frac * 10 + (*s - '0');
                digits++;
            }
            s++;
        }
    }
    if (*s != '\0' || whole > 180) return false;
    while (digits++ < 6)
        frac *= 10;
    *e6 = (whole * 1000000 + frac) * (neg ? -1 : 1);
    return true;
}

struct pending {
    trastenda_args a[1024];
    long line[1024];
    char ids[1024][3][FIELD_MAX];
    const char *chans[1024][8];
    char chan_buf[1024][FIELD_MAX];
    uint32_t n;
};

struct tally {
    long rows, accepted, rejected;
};

static bool tty;

static int
flush(trastenda_client *c, struct pending *p, const char *file, struct tally *t, bool dry)
{
    if (p->n == 0) return 0;
    if (dry) {
        t->accepted += p->n;
        p->n = 0;
        return 0;
    }
    static trastenda_reply r[1024];
    trastenda_err e = trastenda_call_batch(c, p->a, p->n, r);
    if (e == TRASTENDA_E_TIMEOUT || e == TRASTENDA_E_CONNECT) {
        fprintf(stderr, "\nimport: %s: the server did not answer (%s)\n", file,
                trastenda_err_message(e));
        return 3;
    }
    for (uint32_t i = 0; i < p->n; i++) {
        if (r[i].code == TRASTENDA_OK)
            t->accepted++;
        else {
            t->rejected++;
            fprintf(stderr, "%s%s:%ld: rejected: %s (%s)\n", tty ? "\n" : "", file, p->line[i],
                    r[i].msg, r[i].name);
        }
        trastenda_reply_clear(&r[i]);
    }
    p->n = 0;
    return 0;
}

static void
reject(const char *file, long line, const char *why, struct tally *t)
{
    t->rejected++;
    fprintf(stderr, "%s%s:%ld: rejected: %s\n", tty ? "\n" : "", file, line, why);
}

enum kind {
    LOCATIONS,
    SKUS,
    STOCK
};

static int
import_file(trastenda_client *c, const char *file, enum kind kind, uint32_t batch, bool dry,
            struct tally *t)
{
    FILE *fp = fopen(file, "r");
    if (fp == NULL) {
        fprintf(stderr, "import: cannot open %s\n", file);
        return 2;
    }
    static struct row hdr, r;
    static struct pending p;
    long line = 0;
    p.n = 0;
    if (!csv_read(fp, &hdr, &line)) {
        fclose(fp);
        fprintf(stderr, "import: %s is empty\n", file);
        return 2;
    }
    const char *need = kind == LOCATIONS ? "id" : kind == SKUS ? "id" : "sku";
    int cid = col(&hdr, need), cname = col(&hdr, "name"), clat = col(&hdr, "lat"),
        clon = col(&hdr, "lon"), cpri = col(&hdr, "priority"), cch = col(&hdr, "channels"),
        crp = col(&hdr, "reorder_point"), crq = col(&hdr, "reorder_qty"),
        cld = col(&hdr, "lead_days"), css = col(&hdr, "safety_stock"), cloc = col(&hdr, "location"),
        coh = col(&hdr, "on_hand");
    if (cid < 0 || (kind == STOCK && (cloc < 0 || coh < 0))) {
        fclose(fp);
        fprintf(stderr, "import: %s: header must name %s\n", file,
                kind == STOCK ? "sku, location and on_hand" : "id");
        return 2;
    }
    int rc = 0;
    while (rc == 0 && csv_read(fp, &r, &line)) {
        if (r.n == 1 && r.f[0][0] == '\0') continue; /* blank line */
        t->rows++;
        trastenda_args *a = &p.a[p.n];
        p.line[p.n] = line;
        char(*ids)[FIELD_MAX] = p.ids[p.n];
        const char *why = NULL;
        int64_t v = 0;
        snprintf(ids[0], FIELD_MAX, "%s", cid < r.n ? r.f[cid] : "");
        if (ids[0][0] == '\0') why = "empty id";
        if (kind == LOCATIONS) {
            trastenda_args_init(a, "location.upsert");
            a->loc = ids[0];
            if (cname >= 0 && cname < r.n) {
                snprintf(ids[1], FIELD_MAX, "%s", r.f[cname]);
                a->name = ids[1];
            }
            if (clat >= 0 && clat < r.n && r.f[clat][0] && !parse_deg(r.f[clat], &a->lat_e6))
                why = "lat is not a number of degrees";
            if (clon >= 0 && clon < r.n && r.f[clon][0] && !parse_deg(r.f[clon], &a->lon_e6))
                why = "lon is not a number of degrees";
            if (cpri >= 0 && cpri < r.n && r.f[cpri][0]) {
                if (!parse_int(r.f[cpri], &v)) why = "priority is not an integer";
                a->priority = v;
            }
            if (cch >= 0 && cch < r.n && r.f[cch][0]) {
                snprintf(p.chan_buf[p.n], FIELD_MAX, "%s", r.f[cch]);
                a->channels = p.chans[p.n];
                a->n_channels = 0;
                for (char *tok = strtok(p.chan_buf[p.n], ";"); tok && a->n_channels < 8;
                     tok = strtok(NULL, ";"))
                    p.chans[p.n][a->n_channels++] = tok;
            }
        } else if (kind == SKUS) {
            trastenda_args_init(a, "sku.upsert");
            a->sku = ids[0];
            if (cname >= 0 && cname < r.n) {
                snprintf(ids[1], FIELD_MAX, "%s", r.f[cname]);
                a->name = ids[1];
            }
            int cols[4] = {crp, crq, cld, css};
            int64_t *dst[4] = {&a->reorder_point, &a->reorder_qty, &a->lead_days, &a->safety_stock};
            for (int k = 0; k < 4; k++)
                if (cols[k] >= 0 && cols[k] < r.n && r.f[cols[k]][0] &&
                    !parse_int(r.f[cols[k]], dst[k]))
                    why = "a number column is not an integer";
        } else {
            trastenda_args_init(a, "count");
            a->sku = ids[0];
            snprintf(ids[1], FIELD_MAX, "%s", cloc < r.n ? r.f[cloc] : "");
            a->loc = ids[1];
            if (ids[1][0] == '\0') why = "empty location";
            if (coh >= r.n || !parse_int(r.f[coh], &a->qty)) why = "on_hand is not an integer";
            a->reason = "count";
        }
        if (why != NULL) {
            reject(file, line, why, t);
            continue;
        }
        if (++p.n == batch) rc = flush(c, &p, file, t, dry);
        if (tty && rc == 0) fprintf(stderr, "\r%s: %ld rows", file, t->rows);
    }
    if (rc == 0) rc = flush(c, &p, file, t, dry);
    if (tty) fprintf(stderr, "\r%s: %ld rows\n", file, t->rows);
    fclose(fp);
    return rc;
}

int cli_import(trastenda_client *c, int argc, char **argv, bool json);

int
cli_import(trastenda_client *c, int argc, char **argv, bool json)
{
    const char *files[3] = {NULL, NULL, NULL};
    bool dry = false;
    uint32_t batch = 500;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--dry-run") == 0)
            dry = true;
        else if (i + 1 < argc && strcmp(argv[i], "--locations") == 0)
            files[LOCATIONS] = argv[++i];
        else if (i + 1 < argc && strcmp(argv[i], "--skus") == 0)
            files[SKUS] = argv[++i];
        else if (i + 1 < argc && strcmp(argv[i], "--stock") == 0)
            files[STOCK] = argv[++i];
        else if (i + 1 < argc && strcmp(argv[i], "--batch") == 0) {
            batch = (uint32_t)strtoul(argv[++i], NULL, 10);
            if (batch == 0 || batch > 1024) batch = 500;
        } else {
            fprintf(stderr, "import: unknown flag %s\n", argv[i]);
            return 2;
        }
    }
    if (files[0] == NULL && files[1] == NULL && files[2] == NULL) {
        fprintf(stderr, "import: name at least one of --locations, --skus, --stock\n");
        return 2;
    }
    tty = isatty(2) && !json;
    struct tally t[3] = {{0, 0, 0}, {0, 0, 0}, {0, 0, 0}};
    int rc = 0;
    /* Locations and SKUs before the stock that names them. */
    for (int k = 0; k < 3 && rc == 0; k++)
        if (files[k] != NULL) rc = import_file(c, files[k], (enum kind)k, batch, dry, &t[k]);
    static const char *const names[3] = {"locations", "skus", "stock"};
    long rejected = 0;
    if (json) printf("{");
    for (int k = 0; k < 3; k++) {
        if (files[k] == NULL) continue;
        rejected += t[k].rejected;
        if (json)
            printf("%s\"%s\":{\"rows\":%ld,\"accepted\":%ld,\"rejected\":%ld}",
                   k > 0 && (files[0] != NULL || (k == 2 && files[1] != NULL)) ? "," : "", names[k],
                   t[k].rows, t[k].accepted, t[k].rejected);
        else
            printf("%s%s: %ld rows, %ld accepted, %ld rejected\n", dry ? "(dry run) " : "",
                   names[k], t[k].rows, t[k].accepted, t[k].rejected);
    }
    if (json) printf("}\n");
    return rc != 0 ? rc : rejected > 0 ? 1 : 0;
}

/* ---- export: the tables back to CSV, in the columns import reads ---- */

static void
csv_field(FILE *f, const char *s, uint32_t n)
{
    bool quote = false;
    for (uint32_t i = 0; i < n; i++)
        if (s[i] == ',' || s[i] == '"' || s[i] == '\n') quote = true;
    if (!quote) {
        fwrite(s, 1, n, f);
        return;
    }
    fputc('"', f);
    for (uint32_t i = 0; i < n; i++) {
        if (s[i] == '"') fputc('"', f);
        fputc(s[i], f);
    }
    fputc('"', f);
}

/* Micro-degrees as decimal degrees, without floating point. */
static void
csv_deg(FILE *f, int64_t e6)
{
    int64_t a = e6 < 0 ? -e6 : e6;
    fprintf(f, "%s%lld.%06lld", e6 < 0 ? "-" : "", (long long)(a / 1000000),
            (long long)(a % 1000000));
}

/* Writes one row map's values for the columns named in cols (in that order). */
static bool
csv_row(FILE *f, struct mp_rd *rd, const char *const *cols, int ncols)
{
    const char *sv[16];
    uint32_t sl[16];
    int64_t iv[16];
    char buf[16][1024];
    int kind[16] = {0}; /* 0 absent, 1 str, 2 int, 3 degrees, 4 channel list */
    uint32_t n;
    if (!mp_read_map(rd, &n)) return false;
    for (uint32_t k = 0; k < n; k++) {
        const char *key;
        uint32_t kl;
        if (!mp_read_str(rd, &key, &kl)) return false;
        int c = -1;
        for (int i = 0; i < ncols; i++)
            if (strlen(cols[i]) == kl && memcmp(cols[i], key, kl) == 0) c = i;
        if (c < 0) {
            if (!mp_skip(rd, MP_DEPTH_MAX)) return false;
            continue;
        }
        enum mp_type t = mp_peek(rd);
        if (t == MP_STR) {
            if (!mp_read_str(rd, &sv[c], &sl[c])) return false;
            kind[c] = 1;
        } else if (t == MP_INT) {
            if (!mp_read_i64(rd, &iv[c])) return false;
            kind[c] = strcmp(cols[c], "lat_e6") == 0 || strcmp(cols[c], "lon_e6") == 0 ? 3 : 2;
        } else if (t == MP_ARRAY) { /* channels: a;b */
            uint32_t m;
            if (!mp_read_array(rd, &m)) return false;
            buf[c][0] = '\0';
            for (uint32_t j = 0; j < m; j++) {
                const char *s;
                uint32_t len;
                if (!mp_read_str(rd, &s, &len)) return false;
                size_t at = strlen(buf[c]);
                snprintf(buf[c] + at, sizeof(buf[c]) - at, "%s%.*s", j ? ";" : "", (int)len, s);
            }
            kind[c] = 4;
        } else if (!mp_skip(rd, MP_DEPTH_MAX))
            return false;
    }
    for (int i = 0; i < ncols; i++) {
        if (i > 0) fputc(',', f);
        if (kind[i] == 1) csv_field(f, sv[i], sl[i]);
        if (kind[i] == 2) fprintf(f, "%lld", (long long)iv[i]);
        if (kind[i] == 3) csv_deg(f, iv[i]);
        if (kind[i] == 4) csv_field(f, buf[i], (uint32_t)strlen(buf[i]));
    }
    fputc('\n', f);
    return true;
}

static int
export_table(trastenda_client *c, const char *op, const char *file, const char *header,
             const char *const *cols, int ncols, long *rows)
{
    FILE *f = strcmp(file, "-") == 0 ? stdout : fopen(file, "w");
    if (f == NULL) {
        fprintf(stderr, "export: cannot write %s\n", file);
        return 2;
    }
    fprintf(f, "%s\n", header);
    uint64_t cursor = 0;
    int rc = 0;
    for (;;) {
        trastenda_args a;
        trastenda_args_init(&a, op);
        a.cursor = (int64_t)cursor;
        a.limit = 1000;
        trastenda_reply r;
        trastenda_err e = trastenda_call(c, &a, &r);
        if (e != TRASTENDA_OK || r.code != TRASTENDA_OK) {
            fprintf(stderr, "export: %s: %s\n", op, r.msg);
            trastenda_reply_clear(&r);
            rc = e == TRASTENDA_E_TIMEOUT || e == TRASTENDA_E_CONNECT ? 3 : 1;
            break;
        }
        struct mp_rd rd;
        mp_rd_init(&rd, r.raw, r.raw_len);
        uint32_t n, nrows = 0;
        uint64_t next = 0;
        bool ok = mp_read_map(&rd, &n);
        for (uint32_t k = 0; ok && k < n; k++) {
            const char *key;
            uint32_t kl;
            ok = mp_read_str(&rd, &key, &kl);
            if (!ok) break;
            if (kl == 4 && memcmp(key, "next", 4) == 0)
                ok = mp_read_u64(&rd, &next);
            else if (kl == 4 && memcmp(key, "rows", 4) == 0) {
                ok = mp_read_array(&rd, &nrows);
                for (uint32_t i = 0; ok && i < nrows; i++)
                    ok = csv_row(f, &rd, cols, ncols);
                *rows += nrows;
            } else
                ok = mp_skip(&rd, MP_DEPTH_MAX);
        }
        trastenda_reply_clear(&r);
        if (!ok) {
            fprintf(stderr, "export: %s: a reply that does not parse\n", op);
            rc = 1;
            break;
        }
        if (next == 0) break;
        cursor = next;
    }
    if (f != stdout) fclose(f);
    return rc;
}

int cli_export(trastenda_client *c, int argc, char **argv, bool json);

int
cli_export(trastenda_client *c, int argc, char **argv, bool json)
{
    const char *files[3] = {NULL, NULL, NULL};
    for (int i = 0; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--locations") == 0)
            files[0] = argv[i + 1];
        else if (strcmp(argv[i], "--skus") == 0)
            files[1] = argv[i + 1];
        else if (strcmp(argv[i], "--stock") == 0)
            files[2] = argv[i + 1];
        else {
            fprintf(stderr, "export: unknown flag %s\n", argv[i]);
            return 2;
        }
    }
    if ((argc % 2) != 0 || (files[0] == NULL && files[1] == NULL && files[2] == NULL)) {
        fprintf(stderr, "export: name at least one of --locations F, --skus F, --stock F (- for "
                        "standard output)\n");
        return 2;
    }
    static const char *const lcols[] = {"loc", "name", "lat_e6", "lon_e6", "priority", "channels"};
    static const char *const scols[] = {"sku",         "name",      "reorder_point",
                                        "reorder_qty", "lead_days", "safety_stock"};
    static const char *const kcols[] = {"sku",        "loc",        "on_hand",      "committed",
                                        "held",       "unsellable", "safety_stock", "incoming",
                                        "in_transit", "available"};
    long rows[3] = {0, 0, 0};
    int rc = 0;
    if (files[0] != NULL)
        rc = export_table(c, "location.list", files[0], "id,name,lat,lon,priority,channels", lcols,
                          6, &rows[0]);
    if (rc == 0 && files[1] != NULL)
        rc = export_table(c, "sku.list", files[1],
                          "id,name,reorder_point,reorder_qty,lead_days,safety_stock", scols, 6,
                          &rows[1]);
    if (rc == 0 && files[2] != NULL)
        rc = export_table(c, "stock.list", files[2],
                          "sku,location,on_hand,committed,held,unsellable,safety_stock,incoming,"
                          "in_transit,available",
                          kcols, 10, &rows[2]);
    if (rc == 0) {
        if (json)
            fprintf(stderr, "{\"locations\":%ld,\"skus\":%ld,\"stock\":%ld}\n", rows[0], rows[1],
                    rows[2]);
        else
            fprintf(stderr, "exported %ld locations, %ld skus, %ld stock records\n", rows[0],
                    rows[1], rows[2]);
    }
    return rc;
}
