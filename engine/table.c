/*
 * engine/table.c - the building blocks of the tables: free-slot pools, retention FIFOs, the
 * three-level bit set of the low-stock index, and the entry buffers.
 * All preallocated at init from the configured maxima, except the entry buffers, which grow to
 * the high-water mark of the largest batch seen.
 */
#include <string.h>

#include "eng.h"

trastenda_err
eng_pool_init(struct eng_pool *p, uint32_t max)
{
    TS_ASSERT(max > 0);
    p->stack = ts_alloc((size_t)max * sizeof(uint32_t));
    if (p->stack == NULL) return TRASTENDA_E_NOMEM;
    /* Slot 0 is handed out first: the stack holds max-1 .. 0. */
    for (uint32_t i = 0; i < max; i++)
        p->stack[i] = max - 1 - i;
    p->top = max;
    p->max = max;
    p->hw = 0;
    return TRASTENDA_OK;
}

void
eng_pool_fini(struct eng_pool *p)
{
    if (p->stack != NULL) ts_free(p->stack, (size_t)p->max * sizeof(uint32_t));
    p->stack = NULL;
}

uint32_t
eng_pool_take(struct eng_pool *p)
{
    if (p->top == 0) return ENG_NONE;
    uint32_t ix = p->stack[--p->top];
    TS_ASSERT(ix < p->max);
    if (ix >= p->hw) p->hw = ix + 1;
    return ix;
}

void
eng_pool_give(struct eng_pool *p, uint32_t ix)
{
    TS_ASSERT(ix < p->max);
    TS_ASSERT(p->top < p->max);
    p->stack[p->top++] = ix;
}

trastenda_err
eng_fifo_init(struct eng_fifo *f, uint32_t max)
{
    memset(f, 0, sizeof(*f));
    f->prev = ts_alloc((size_t)max * sizeof(uint32_t));
    f->next = ts_alloc((size_t)max * sizeof(uint32_t));
    if (f->prev == NULL || f->next == NULL) return TRASTENDA_E_NOMEM;
    for (uint32_t i = 0; i < max; i++)
        f->prev[i] = f->next[i] = ENG_NONE;
    f->head = f->tail = ENG_NONE;
    return TRASTENDA_OK;
}

void
eng_fifo_fini(struct eng_fifo *f, uint32_t max)
{
    if (f->prev != NULL) ts_free(f->prev, (size_t)max * sizeof(uint32_t));
    if (f->next != NULL) ts_free(f->next, (size_t)max * sizeof(uint32_t));
    f->prev = f->next = NULL;
}

bool
eng_fifo_has(const struct eng_fifo *f, uint32_t ix)
{
    return f->head == ix || f->prev[ix] != ENG_NONE;
}

void
eng_fifo_push(struct eng_fifo *f, uint32_t ix)
{
    TS_ASSERT(!eng_fifo_has(f, ix));
    f->prev[ix] = f->tail;
    f->next[ix] = ENG_NONE;
    if (f->tail != ENG_NONE)
        f->next[f->tail] = ix;
    else
        f->head = ix;
    f->tail = ix;
    f->count++;
}

void
eng_fifo_remove(struct eng_fifo *f, uint32_t ix)
{
    TS_ASSERT(eng_fifo_has(f, ix));
    TS_ASSERT(f->count > 0);
    uint32_t p = f->prev[ix], n = f->next[ix];
    if (p != ENG_NONE)
        f->next[p] = n;
    else
        f->head = n;
    if (n != ENG_NONE)
        f->prev[n] = p;
    else
        f->tail = p;
    f->prev[ix] = f->next[ix] = ENG_NONE;
    f->count--;
}

static uint32_t
words(uint32_t bits)
{
    return bits / 64 + 1;
}

trastenda_err
eng_bits_init(struct eng_bits *b, uint32_t n)
{
    b->n0 = words(n);
    b->n1 = words(b->n0);
    b->n2 = words(b->n1);
    b->l0 = ts_alloc((size_t)b->n0 * 8);
    b->l1 = ts_alloc((size_t)b->n1 * 8);
    b->l2 = ts_alloc((size_t)b->n2 * 8);
    if (b->l0 == NULL || b->l1 == NULL || b->l2 == NULL) return TRASTENDA_E_NOMEM;
    return TRASTENDA_OK;
}

void
eng_bits_fini(struct eng_bits *b)
{
    if (b->l0 != NULL) ts_free(b->l0, (size_t)b->n0 * 8);
    if (b->l1 != NULL) ts_free(b->l1, (size_t)b->n1 * 8);
    if (b->l2 != NULL) ts_free(b->l2, (size_t)b->n2 * 8);
    b->l0 = b->l1 = b->l2 = NULL;
}

bool
eng_bits_get(const struct eng_bits *b, uint32_t i)
{
    return (b->l0[i / 64] >> (i % 64)) & 1u;
}

void
eng_bits_set(struct eng_bits *b, uint32_t i, bool on)
{
    uint32_t w0 = i / 64, w1 = w0 / 64;
    TS_ASSERT(w0 < b->n0);
    if (on) {
        b->l0[w0] |= 1ull << (i % 64);
        b->l1[w1] |= 1ull << (w0 % 64);
        b->l2[w1 / 64] |= 1ull << (w1 % 64);
        return;
    }
    if (!(b->l0[w0] & (1ull << (i % 64)))) return; /* clear already: no write */
    b->l0[w0] &= ~(1ull << (i % 64));
    if (b->l0[w0] != 0) return;
    b->l1[w1] &= ~(1ull << (w0 % 64));
    if (b->l1[w1] != 0) return;
    b->l2[w1 / 64] &= ~(1ull << (w1 % 64));
}

/* First set bit at or after from in word array w of n words; ENG_NONE when none. */
static uint32_t
scan_word(const uint64_t *w, uint32_t n, uint32_t from)
{
    uint32_t i = from / 64;
    if (i >= n) return ENG_NONE;
    uint64_t x = w[i] & (~0ull << (from % 64));
    if (x != 0) return i * 64 + (uint32_t)__builtin_ctzll(x);
    return ENG_NONE;
}

uint32_t
eng_bits_next(const struct eng_bits *b, uint32_t from)
{
    /* The bit itself, else the next non-empty level-0 word from the level-1 summary, else the
     * next non-empty level-1 word from the (short) level-2 array. */
    uint32_t i0 = scan_word(b->l0, b->n0, from);
    if (i0 != ENG_NONE) return i0;
    uint32_t w0 = from / 64 + 1;
    uint32_t i1 = scan_word(b->l1, b->n1, w0);
    if (i1 == ENG_NONE) {
        uint32_t i2 = ENG_NONE;
        for (uint32_t w1 = w0 / 64 + 1; w1 < b->n2 * 64 && i2 == ENG_NONE; w1 = (w1 / 64 + 1) * 64)
            i2 = scan_word(b->l2, b->n2, w1);
        if (i2 == ENG_NONE) return ENG_NONE;
        i1 = i2 * 64 + (uint32_t)__builtin_ctzll(b->l1[i2]);
    }
    TS_ASSERT(i1 < b->n0 && b->l0[i1] != 0);
    return i1 * 64 + (uint32_t)__builtin_ctzll(b->l0[i1]);
}

void
eng_buf_reserve(struct eng_buf *b, size_t more)
{
    if (b->len + more <= b->cap) return;
    size_t cap = b->cap ? b->cap : (1u << 20);
    while (cap < b->len + more)
        cap *= 2;
    uint8_t *p = ts_alloc(cap);
    /* Fail-stop: an engine that cannot hold its batch's effects cannot go on consistently. */
    TS_ASSERT(p != NULL);
    if (b->len > 0) memcpy(p, b->p, b->len);
    ts_free(b->p, b->cap);
    b->p = p;
    b->cap = cap;
}

void
eng_buf_fini(struct eng_buf *b)
{
    ts_free(b->p, b->cap);
    b->p = NULL;
    b->cap = b->len = 0;
}
