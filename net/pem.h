/*
 * net/pem.h - reading a PEM file whole, for the server's TLS (net/tls.c) and the client
 * library's (net/client.c), which are built into different libraries: hence a header.
 */
#ifndef TRASTENDA_NET_PEM_H
#define TRASTENDA_NET_PEM_H

#include <stdio.h>
#include <stdlib.h>

/* The whole file with a NUL after it (mbedTLS parses PEM only with it), at most 1 MiB;
 * caller frees. NULL when it cannot be read or is larger. */
static inline char *
pem_read(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) return NULL;
    char *buf = NULL;
    long n = -1;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && n <= (1 << 20) &&
        fseek(f, 0, SEEK_SET) == 0)
        buf = malloc((size_t)n + 1);
    if (buf != NULL && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf != NULL) buf[n] = '\0';
    return buf;
}

#endif /* TRASTENDA_NET_PEM_H */
