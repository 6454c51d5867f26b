/*
 * net/web.h - the dashboard's files (net/web/), embedded at build time by
 * scripts/embed-web.cmake into web_assets.c and served by net/http.c at GET /.
 */
#ifndef TRASTENDA_NET_WEB_H
#define TRASTENDA_NET_WEB_H

#include <stddef.h>

struct web_file {
    const char *path; /* "/index.html" */
    const char *type; /* Content-Type */
    const unsigned char *data;
    size_t len;
};

/* Every file, then one with a NULL path. */
extern const struct web_file web_files[];

#endif /* TRASTENDA_NET_WEB_H */
