/*
 * net/cmd/cli.c - trastenda-cli: every operation from a shell, CSV import, event watching.
 *
 *   trastenda-cli [--server ADDR] [--json] [--timeout-ms N] [--tls-ca PEM] [--tls-cert PEM
 *                 --tls-key PEM] COMMAND [flags]     (a token: $TRASTENDA_TOKEN)
 *
 * Output is a human-readable table or summary by default, the server's result as JSON with
 * --json. Exit codes: 0 ok, 1 the operation failed (its error is printed), 2 usage, 3 the server
 * could not be reached or timed out. `trastenda-cli COMMAND --help` describes each command.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mp.h"
#include "trastenda/client.h"

#include <nng/nng.h>
#include <nng/protocol/pubsub0/sub.h>
#include <nng/supplemental/tls/tls.h>

#define LINES_MAX 64

struct cmd {
    const char *name; /* as typed: "order place" is "order" + "place" */
    const char *op;   /* protocol op */
    const char *usage;
    const char *help;
};

static const struct cmd CMDS[] = {
    {"stock", "stock", "--sku SKU [--loc LOC | --cursor N --limit N] [--channel CH]",
     "availability per location (pages of a SKU's locations: --cursor from the reply's next)"},
    {"reserve", "reserve",
     "--line SKU[@LOC]:QTY ... --ttl-ms N [--key K] [--channel CH] [--lat L --lon L] [--partial]",
     "hold stock at checkout"},
    {"extend", "extend", "--hold ID --ttl-ms N", "push a hold's expiry"},
    {"confirm", "confirm", "--hold ID --order ORDER [--channel CH]", "turn a hold into an order"},
    {"release", "release", "--hold ID", "give a hold's stock back"},
    {"order place", "order.place",
     "--order ORDER --line SKU:QTY ... --lat L --lon L [--channel CH]",
     "route and commit an order"},
    {"order pick", "order.pick", "--order ORDER [--loc LOC]", ""},
    {"order pack", "order.pack", "--order ORDER [--loc LOC]", ""},
    {"order ship", "order.ship", "--order ORDER [--loc LOC]", ""},
    {"order deliver", "order.deliver", "--order ORDER", ""},
    {"order cancel", "order.cancel", "--order ORDER", ""},
    {"order return", "order.return", "--order ORDER --line SKU@LOC:QTY[:unsellable] ...", ""},
    {"order get", "order", "--order ORDER", "an order (live or archived)"},
    {"hold", "hold", "--hold ID", "a hold (live or archived)"},
    {"receive", "receive", "--sku SKU --loc LOC --qty N [--key K] [--ref REF]", "ad hoc receipt"},
    {"adjust", "adjust", "--sku SKU --loc LOC --qty +-N --reason R [--key K]",
     "count|damage|theft|found|correction"},
    {"count", "count", "--sku SKU --loc LOC --qty N [--expected N]", "set on_hand (cycle count)"},
    {"unsellable", "unsellable", "--sku SKU --loc LOC --qty +-N [--reason R]",
     "move to/from unsellable"},
    {"safety", "safety", "--sku SKU --loc LOC --qty N", "set safety stock"},
    {"transfer", "transfer.out", "--sku SKU --loc FROM --to TO --qty N", "ship between locations"},
    {"transfer in", "transfer.in", "--sku SKU --loc LOC --qty N", "receive a transfer"},
    {"po create", "po.create", "--po PO --line SKU@LOC:QTY ...", "purchase order: incoming stock"},
    {"po receive", "po.receive", "--po PO --line SKU@LOC:QTY ...", ""},
    {"po close", "po.close", "--po PO", ""},
    {"po get", "po", "--po PO", ""},
    {"location", "location.upsert",
     "--loc LOC [--name N] [--lat L --lon L] [--priority P] [--channels a,b]",
     "create or update a location"},
    {"sku", "sku.upsert",
     "--sku SKU [--name N] [--reorder-point N] [--reorder-qty N] [--lead-days N] [--safety-stock "
     "N]",
     "create or update a SKU"},
    {"location deactivate", "location.deactivate", "--loc LOC", "stop routing to a location"},
    {"sku deactivate", "sku.deactivate", "--sku SKU", "stop selling a SKU"},
    {"expiring", "holds.expiring", "[--limit N]", "the open holds that expire first"},
    {"low-stock", "low_stock", "[--cursor N] [--limit N]",
     "records at or below their reorder point"},
    {"reorder", "reorder", "[--cursor N] [--limit N]", "what to reorder, with velocity and cover"},
    {"ledger", "ledger",
     "--sku SKU [--loc LOC] [--from-ms T] [--to-ms T] [--before SEQ] [--limit N]",
     "movements, newest first"},
    {"status", "status", "", "the node: role, sequences, counters, tables"},
    {"backup", "backup", "--dir DIR", "checkpoint the running node into DIR (on the server)"},
    {"promote", "promote", "[--force]",
     "make this follower the leader (refused if a reachable follower is ahead, unless --force)"},
    {"digest", "digest", "", "the node's state digest at its applied sequence"},
    {"events", "events", "[--since SEQ] [--limit N]", "events after a log sequence"},
};

static bool json_out;
static const char *tls_ca_file; /* --tls-ca: the CA of tls+tcp:// servers (requests, watch) */

static void
usage(FILE *f)
{
    fprintf(f, "usage: trastenda-cli [--server ADDR] [--json] [--timeout-ms N] [--tls-ca PEM]\n"
               "                     [--tls-cert PEM --tls-key PEM] COMMAND [flags]\n\n"
               "commands:\n");
    for (size_t i = 0; i < sizeof(CMDS) / sizeof(CMDS[0]); i++)
        fprintf(f, "  %-14s %s\n", CMDS[i].name, CMDS[i].help);
    fprintf(f, "  %-14s %s\n", "watch", "print events as they happen (--events ADDR, --topic T)");
    fprintf(f, "  %-14s %s\n", "import",
            "CSV: --locations F --skus F --stock F [--dry-run] [--batch N]");
    fprintf(f, "  %-14s %s\n", "export", "CSV: --locations F --skus F --stock F (- for stdout)");
    fprintf(f, "\nADDR defaults to $TRASTENDA_SERVER or tcp://127.0.0.1:7878 (tls+tcp:// with "
               "--tls-ca).\nA token for servers that need one: $TRASTENDA_TOKEN.\n"
               "Exit codes: 0 ok, 1 the operation failed, 2 usage, 3 server unreachable.\n");
}

/* ---- flags ---- */

struct flags {
    trastenda_args a;
    trastenda_cline lines[LINES_MAX];
    char line_buf[LINES_MAX][160];
    const char *channels[32];
    char chan_buf[1024];
};

static bool
parse_i64(const char *s, int64_t *v)
{
    char *end;
    errno = 0;
    long long x = strtoll(s, &end, 10);
    if (errno != 0 || *end != '\0' || end == s) return false;
    *v = x;
    return true;
}

/* SKU[@LOC]:QTY[:unsellable] */
static bool
parse_line(struct flags *f, const char *text)
{
    if (f->a.n_lines >= LINES_MAX) return false;
    uint32_t i = f->a.n_lines;
    snprintf(f->line_buf[i], sizeof(f->line_buf[i]), "%s", text);
    char *s = f->line_buf[i];
    char *colon = strchr(s, ':');
    if (colon == NULL) return false;
    *colon = '\0';
    char *extra = strchr(colon + 1, ':');
    if (extra != NULL) *extra++ = '\0';
    char *at = strchr(s, '@');
    if (at != NULL) *at++ = '\0';
    trastenda_cline *l = &f->lines[i];
    memset(l, 0, sizeof(*l));
    l->sku = s;
    l->loc = at;
    if (!parse_i64(colon + 1, &l->qty)) return false;
    if (extra != NULL) {
        if (strcmp(extra, "unsellable") != 0) return false;
        l->unsellable = 1;
    }
    f->a.lines = f->lines;
    f->a.n_lines = i + 1;
    return true;
}

static bool
set_flag(struct flags *f, const char *name, const char *val)
{
    trastenda_args *a = &f->a;
    struct {
        const char *n;
        const char **dst;
    } strs[] = {{"sku", &a->sku},         {"loc", &a->loc},       {"to", &a->to},
                {"order", &a->order},     {"po", &a->po},         {"name", &a->name},
                {"channel", &a->channel}, {"reason", &a->reason}, {"dir", &a->dir},
                {"key", &a->key},         {"actor", &a->actor},   {"ref", &a->ref}};
    for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++)
        if (strcmp(name, strs[i].n) == 0) {
            *strs[i].dst = val;
            return true;
        }
    struct {
        const char *n;
        int64_t *dst;
    } nums[] = {{"hold", &a->hold},
                {"qty", &a->qty},
                {"expected", &a->expected},
                {"ttl-ms", &a->ttl_ms},
                {"reorder-point", &a->reorder_point},
                {"reorder-qty", &a->reorder_qty},
                {"safety-stock", &a->safety_stock},
                {"lead-days", &a->lead_days},
                {"priority", &a->priority},
                {"lat", &a->lat_e6},
                {"lon", &a->lon_e6},
                {"cursor", &a->cursor},
                {"limit", &a->limit},
                {"from-ms", &a->from_ms},
                {"to-ms", &a->to_ms},
                {"before", &a->before},
                {"since", &a->since}};
    for (size_t i = 0; i < sizeof(nums) / sizeof(nums[0]); i++)
        if (strcmp(name, nums[i].n) == 0) return parse_i64(val, nums[i].dst);
    if (strcmp(name, "line") == 0) return parse_line(f, val);
    if (strcmp(name, "min-seq") == 0) {
        int64_t v;
        if (!parse_i64(val, &v) || v < 0) return false;
        a->min_seq = (uint64_t)v;
        return true;
    }
    if (strcmp(name, "channels") == 0) {
        snprintf(f->chan_buf, sizeof(f->chan_buf), "%s", val);
        a->n_channels = 0;
        for (char *t = strtok(f->chan_buf, ","); t != NULL && a->n_channels < 32;
             t = strtok(NULL, ","))
            f->channels[a->n_channels++] = t;
        a->channels = f->channels;
        return true;
    }
    return false;
}

/* ---- output ---- */

/* A tiny walker over the result map for tables. */
static bool
find_key(struct mp_rd *rd, const char *key)
{
    uint32_t n;
    if (!mp_read_map(rd, &n)) return false;
    for (uint32_t i = 0; i < n; i++) {
        const char *k;
        uint32_t kl;
        if (!mp_read_str(rd, &k, &kl)) return false;
        if (kl == strlen(key) && memcmp(k, key, kl) == 0) return true;
        if (!mp_skip(rd, MP_DEPTH_MAX)) return false;
    }
    return false;
}

/* One value as short text: scalars as they are, maps as k=v pairs, arrays comma-joined. */
static void
text_value(struct mp_rd *rd, char *out, size_t cap, int depth)
{
    size_t len = strlen(out);
    const char *s;
    uint32_t n;
    int64_t i;
    uint64_t u;
    bool b;
    if (depth > 6) return;
    switch (mp_peek(rd)) {
    case MP_STR:
        if (mp_read_str(rd, &s, &n)) snprintf(out + len, cap - len, "%.*s", (int)n, s);
        return;
    case MP_INT:
        if (*rd->p >= 0xe0 || (*rd->p >= 0xd0 && *rd->p <= 0xd3)) {
            if (mp_read_i64(rd, &i)) snprintf(out + len, cap - len, "%lld", (long long)i);
        } else if (mp_read_u64(rd, &u))
            snprintf(out + len, cap - len, "%llu", (unsigned long long)u);
        return;
    case MP_BOOL:
        if (mp_read_bool(rd, &b)) snprintf(out + len, cap - len, "%s", b ? "yes" : "no");
        return;
    case MP_MAP:
        if (!mp_read_map(rd, &n)) return;
        for (uint32_t k = 0; k < n; k++) {
            len = strlen(out);
            if (k > 0) snprintf(out + len, cap - len, " ");
            text_value(rd, out, cap, depth + 1);
            len = strlen(out);
            snprintf(out + len, cap - len, "=");
            text_value(rd, out, cap, depth + 1);
        }
        return;
    case MP_ARRAY:
        if (!mp_read_array(rd, &n)) return;
        for (uint32_t k = 0; k < n; k++) {
            len = strlen(out);
            if (k > 0) snprintf(out + len, cap - len, ", ");
            text_value(rd, out, cap, depth + 1);
        }
        return;
    default:
        mp_skip(rd, MP_DEPTH_MAX);
    }
}

#define TCOLS 16
#define TROWS 1000

/* Prints an array of maps under `key` as an aligned table (columns of the first row). */
static void
print_rows(const uint8_t *raw, size_t len, const char *key)
{
    static char cell[TROWS + 1][TCOLS][96];
    int width[TCOLS] = {0};
    struct mp_rd rd;
    mp_rd_init(&rd, raw, len);
    uint32_t n, ncols = 0;
    if (!find_key(&rd, key) || !mp_read_array(&rd, &n)) return;
    if (n > TROWS) n = TROWS;
    for (uint32_t r = 0; r < n; r++) {
        uint32_t m;
        if (!mp_read_map(&rd, &m)) return;
        for (uint32_t k = 0; k < m; k++) {
            char name[96] = "";
            text_value(&rd, name, sizeof(name), 0);
            uint32_t c = 0;
            while (c < ncols && strcmp(cell[0][c], name) != 0)
                c++;
            if (c == ncols && ncols < TCOLS) snprintf(cell[0][ncols++], 96, "%s", name);
            char v[96] = "";
            text_value(&rd, v, sizeof(v), 0);
            if (c < TCOLS) snprintf(cell[r + 1][c], 96, "%s", v);
        }
    }
    for (uint32_t r = 0; r <= n; r++)
        for (uint32_t c = 0; c < ncols; c++) {
            int w = (int)strlen(cell[r][c]);
            if (w > width[c]) width[c] = w;
        }
    for (uint32_t r = 0; r <= n; r++) {
        for (uint32_t c = 0; c < ncols; c++)
            if (c + 1 < ncols)
                printf("%-*s  ", width[c], cell[r][c]);
            else
                printf("%s\n", cell[r][c]);
        for (uint32_t c = 0; c < ncols; c++)
            cell[r][c][0] = '\0';
    }
}

/* The other keys of a result (all but code and the table), as `key: value` lines. */
static void
print_fields(const uint8_t *raw, size_t len, const char *skip)
{
    struct mp_rd rd;
    mp_rd_init(&rd, raw, len);
    uint32_t n;
    if (!mp_read_map(&rd, &n)) return;
    for (uint32_t k = 0; k < n; k++) {
        char name[64] = "", v[1024] = "";
        text_value(&rd, name, sizeof(name), 0);
        if (strcmp(name, "code") == 0 || (skip != NULL && strcmp(name, skip) == 0)) {
            mp_skip(&rd, MP_DEPTH_MAX);
            continue;
        }
        text_value(&rd, v, sizeof(v), 0);
        printf("%-14s %s\n", name, v);
    }
}

static int
print_reply(const char *op, const trastenda_reply *r)
{
    if (json_out) {
        char *j = trastenda_result_json(r);
        printf("%s\n", j != NULL ? j : "{}");
        free(j);
        return r->code == TRASTENDA_OK ? 0 : 1;
    }
    if (r->code != TRASTENDA_OK) {
        fprintf(stderr, "error %u %s: %s\n", (unsigned)r->code, r->name, r->msg);
        for (uint32_t i = 0; i < r->n_allocs; i++)
            fprintf(stderr, "  %s short by %" PRId64 "\n", r->allocs[i].sku,
                    r->allocs[i].short_qty);
        if (r->leader[0]) fprintf(stderr, "  the leader is %s\n", r->leader);
        return 1;
    }
    const char *table =
        strcmp(op, "stock") == 0    ? "records"
        : strcmp(op, "events") == 0 ? "events"
        : strcmp(op, "low_stock") == 0 || strcmp(op, "reorder") == 0 || strcmp(op, "ledger") == 0
            ? "rows"
            : NULL;
    if (r->dup) printf("(replayed: this key was applied before; its first result)\n");
    print_fields(r->raw, r->raw_len, table);
    if (table != NULL) print_rows(r->raw, r->raw_len, table);
    return 0;
}

/* ---- watch ---- */

static int
watch(int argc, char **argv)
{
    const char *addr = getenv("TRASTENDA_EVENTS");
    if (addr == NULL) addr = "tcp://127.0.0.1:7879";
    const char *topics[16];
    int nt = 0;
    for (int i = 0; i < argc; i += 2) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            printf("usage: trastenda-cli watch [--events ADDR] [--topic T]...\n"
                   "  prints each event as one JSON line as the server publishes it, until "
                   "interrupted\n  (ADDR: $TRASTENDA_EVENTS, else tcp://127.0.0.1:7879; T: a "
                   "topic prefix, up to 16; none: every topic)\n");
            return 0;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "watch: %s needs a value\n", argv[i]);
            return 2;
        }
        if (strcmp(argv[i], "--events") == 0)
            addr = argv[i + 1];
        else if (strcmp(argv[i], "--topic") == 0 && nt < 16)
            topics[nt++] = argv[i + 1];
        else {
            fprintf(stderr, "watch: unknown flag %s (or more than 16 topics)\n", argv[i]);
            return 2;
        }
    }
    nng_socket s;
    int rv = nng_sub0_open(&s);
    if (rv == 0) rv = nng_socket_set_size(s, NNG_OPT_RECVMAXSZ, 1 << 20);
    for (int i = 0; rv == 0 && i < nt; i++)
        rv = nng_socket_set(s, NNG_OPT_SUB_SUBSCRIBE, topics[i], strlen(topics[i]));
    if (rv == 0 && nt == 0) rv = nng_socket_set(s, NNG_OPT_SUB_SUBSCRIBE, "", 0);
    nng_dialer d;
    if (rv == 0) rv = nng_dialer_create(&d, s, addr);
    /* tls+tcp:// events: the server is verified against --tls-ca (no CA: nothing verifies). */
    if (rv == 0 && strncmp(addr, "tls+", 4) == 0) {
        nng_tls_config *t;
        rv = nng_tls_config_alloc(&t, NNG_TLS_MODE_CLIENT);
        if (rv == 0) {
            rv = nng_tls_config_auth_mode(t, NNG_TLS_AUTH_MODE_REQUIRED);
            if (rv == 0 && tls_ca_file != NULL) rv = nng_tls_config_ca_file(t, tls_ca_file);
            if (rv == 0) rv = nng_dialer_set_ptr(d, NNG_OPT_TLS_CONFIG, t);
            nng_tls_config_free(t); /* the dialer holds its own reference */
        }
    }
    if (rv == 0) rv = nng_dialer_start(d, NNG_FLAG_NONBLOCK);
    if (rv != 0) {
        fprintf(stderr, "watch: %s: %s\n", addr, nng_strerror(rv));
        return 3;
    }
    for (;;) {
        nng_msg *m;
        if (nng_recvmsg(s, &m, 0) != 0) break;
        const uint8_t *b = nng_msg_body(m);
        size_t len = nng_msg_len(m);
        size_t sp = 0;
        while (sp < len && b[sp] != ' ')
            sp++;
        char *j = sp < len ? trastenda_msgpack_json(b + sp + 1, len - sp - 1) : NULL;
        printf("%s\n", j != NULL ? j : "(unreadable event)");
        fflush(stdout);
        free(j);
        nng_msg_free(m);
    }
    nng_close(s);
    return 0;
}

/* ---- import ---- */

int cli_import(trastenda_client *c, int argc, char **argv, bool json);
int cli_export(trastenda_client *c, int argc, char **argv, bool json);

/* ---- main ---- */

static const struct cmd *
find_cmd(int argc, char **argv, int *used)
{
    for (size_t i = 0; i < sizeof(CMDS) / sizeof(CMDS[0]); i++) {
        const char *n = CMDS[i].name;
        const char *sp = strchr(n, ' ');
        if (sp == NULL) {
            /* a one-word command that is also the first word of two-word ones ("order") */
            if (argc >= 1 && strcmp(argv[0], n) == 0) {
                bool two = false;
                for (size_t k = 0; k < sizeof(CMDS) / sizeof(CMDS[0]); k++) {
                    const char *m = CMDS[k].name;
                    size_t nl = strlen(n);
                    if (argc >= 2 && strncmp(m, n, nl) == 0 && m[nl] == ' ' &&
                        strcmp(m + nl + 1, argv[1]) == 0)
                        two = true;
                }
                if (!two) {
                    *used = 1;
                    return &CMDS[i];
                }
            }
        } else if (argc >= 2 && strncmp(argv[0], n, (size_t)(sp - n)) == 0 &&
                   strlen(argv[0]) == (size_t)(sp - n) && strcmp(argv[1], sp + 1) == 0) {
            *used = 2;
            return &CMDS[i];
        }
    }
    return NULL;
}

int
main(int argc, char **argv)
{
    const char *servers[8];
    uint32_t n_servers = 0;
    uint32_t timeout_ms = 5000;
    const char *tls_cert = NULL, *tls_key = NULL;
    int i = 1;
    for (; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
        if (strcmp(argv[i], "--json") == 0)
            json_out = true;
        else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(argv[i], "--server") == 0 && i + 1 < argc && n_servers < 8)
            servers[n_servers++] = argv[++i];
        else if (strcmp(argv[i], "--timeout-ms") == 0 && i + 1 < argc)
            timeout_ms = (uint32_t)strtoul(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--tls-ca") == 0 && i + 1 < argc)
            tls_ca_file = argv[++i];
        else if (strcmp(argv[i], "--tls-cert") == 0 && i + 1 < argc)
            tls_cert = argv[++i];
        else if (strcmp(argv[i], "--tls-key") == 0 && i + 1 < argc)
            tls_key = argv[++i];
        else {
            fprintf(stderr, "trastenda-cli: unknown option %s\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    if (i >= argc) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[i], "watch") == 0) return watch(argc - i - 1, argv + i + 1);
    if (n_servers == 0) {
        const char *env = getenv("TRASTENDA_SERVER");
        servers[n_servers++] = env != NULL ? env : "tcp://127.0.0.1:7878";
    }
    trastenda_client_config cc;
    trastenda_client_config_default(&cc);
    cc.nodes = servers;
    cc.n_nodes = n_servers;
    cc.timeout_ms = timeout_ms;
    cc.token = getenv("TRASTENDA_TOKEN"); /* not a flag: flags show in ps */
    cc.tls_ca_file = tls_ca_file;
    cc.tls_cert_file = tls_cert;
    cc.tls_key_file = tls_key;
    bool is_import = strcmp(argv[i], "import") == 0;
    bool is_export = strcmp(argv[i], "export") == 0;
    int used = 0;
    const struct cmd *cmd = is_import || is_export ? NULL : find_cmd(argc - i, argv + i, &used);
    if (!is_import && !is_export && cmd == NULL) {
        fprintf(stderr, "trastenda-cli: unknown command '%s'\n", argv[i]);
        usage(stderr);
        return 2;
    }
    for (int k = i; k < argc; k++)
        if (strcmp(argv[k], "--help") == 0) {
            if (is_export)
                printf("usage: trastenda-cli export [--locations F] [--skus F] [--stock F]\n"
                       "writes the tables as CSV in the columns import reads (F - for standard "
                       "output)\n");
            else if (is_import)
                printf("usage: trastenda-cli import [--locations F] [--skus F] [--stock F] "
                       "[--dry-run] [--batch N]\n"
                       "CSV headers (docs/CLI.md): locations id,name,lat,lon,priority,channels; "
                       "skus id,name,reorder_point,reorder_qty,lead_days,safety_stock; stock "
                       "sku,location,on_hand\n");
            else
                printf("usage: trastenda-cli %s %s\n  %s (protocol op \"%s\")\n", cmd->name,
                       cmd->usage, cmd->help, cmd->op);
            return 0;
        }
    /* The flags first: a usage error opens no connection. */
    static struct flags f;
    if (!is_export && !is_import) {
        trastenda_args_init(&f.a, cmd->op);
        for (int k = i + used; k < argc; k++) {
            if (strncmp(argv[k], "--", 2) != 0) {
                fprintf(stderr, "trastenda-cli: unexpected '%s'\n", argv[k]);
                return 2;
            }
            if (strcmp(argv[k], "--force") == 0) {
                f.a.force = 1;
                continue;
            }
            if (strcmp(argv[k], "--partial") == 0) {
                f.a.partial = 1;
                continue;
            }
            if (k + 1 >= argc || !set_flag(&f, argv[k] + 2, argv[k + 1])) {
                fprintf(stderr, "trastenda-cli: %s: bad or missing value (see %s --help)\n",
                        argv[k], cmd->name);
                return 2;
            }
            k++;
        }
    }
    trastenda_client *c = NULL;
    char err[512];
    if (trastenda_client_open(&cc, &c, err, sizeof(err)) != TRASTENDA_OK) {
        fprintf(stderr, "trastenda-cli: %s\n", err);
        return 3;
    }
    int rc;
    if (is_export) {
        rc = cli_export(c, argc - i - 1, argv + i + 1, json_out);
    } else if (is_import) {
        rc = cli_import(c, argc - i - 1, argv + i + 1, json_out);
    } else {
        trastenda_reply r;
        trastenda_err e = trastenda_call(c, &f.a, &r);
        if (e == TRASTENDA_E_TIMEOUT || e == TRASTENDA_E_CONNECT) {
            fprintf(stderr, "trastenda-cli: %s: %s\n", servers[0], trastenda_err_message(e));
            rc = 3;
        } else if (e != TRASTENDA_OK) {
            fprintf(stderr, "trastenda-cli: %s\n", trastenda_err_message(e));
            rc = e == TRASTENDA_E_INVALID ? 2 : e == TRASTENDA_E_UNAUTHORIZED ? 1 : 3;
        } else {
            rc = print_reply(cmd->op, &r);
        }
        trastenda_reply_clear(&r);
    }
    trastenda_client_close(c);
    return rc;
}
