/*
 * nginx-loyalty: the first rows of a question over the conversion
 * counters (loyalty_stats_sum.c): the first offset + top rows met so
 * far in a heap whose root is the row that comes last, and their order
 * at the end.
 */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "loyalty_stats_sum.h"


/* < 0 when a comes first: the larger sort counter, then the name */
static int
loyalty_stats_cmp(const loyalty_stats_row_t *a, const loyalty_stats_row_t *b,
    int sort)
{
    if (sort != LOYALTY_STATS_SORT_KEY && a->v != b->v) {
        return a->v > b->v ? -1 : 1;
    }

    return loyalty_stats_cmp_name(a->name, a->len, b->name, b->len);
}


#define loyalty_stats_top_cmp(t, i, j)                                        \
    loyalty_stats_cmp(&(t)->pool[(t)->heap[i]], &(t)->pool[(t)->heap[j]],     \
                      (t)->sort)


static void
loyalty_stats_top_swap(loyalty_stats_top_t *t, size_t i, size_t j)
{
    uint32_t  tmp;

    tmp = t->heap[i];
    t->heap[i] = t->heap[j];
    t->heap[j] = tmp;
}


static void
loyalty_stats_top_down(loyalty_stats_top_t *t, size_t n, size_t i)
{
    size_t  c;

    for ( ;; ) {
        c = 2 * i + 1;
        if (c >= n) {
            return;
        }

        if (c + 1 < n && loyalty_stats_top_cmp(t, c + 1, c) > 0) {
            c++;
        }

        if (loyalty_stats_top_cmp(t, c, i) <= 0) {
            return;
        }

        loyalty_stats_top_swap(t, i, c);
        i = c;
    }
}


static int
loyalty_stats_top_grow(loyalty_stats_top_t *t)
{
    uint32_t             *heap;
    loyalty_stats_row_t  *pool;

    t->nalloc = t->nalloc ? t->nalloc * 2 : 64;
    if (t->nalloc > t->k) {
        t->nalloc = t->k;
    }

    pool = realloc(t->pool, t->nalloc * sizeof(loyalty_stats_row_t));
    if (pool == NULL) {
        return ENOMEM;
    }

    t->pool = pool;

    heap = realloc(t->heap, t->nalloc * sizeof(uint32_t));
    if (heap == NULL) {
        return ENOMEM;
    }

    t->heap = heap;

    return 0;
}


void
loyalty_stats_top_floor(loyalty_stats_top_t *t)
{
    if (t->k == 0) {
        t->floor = INT64_MAX;

    } else if (t->n == t->k && t->sort != LOYALTY_STATS_SORT_KEY) {
        t->floor = t->pool[t->heap[0]].v;

    } else {
        t->floor = INT64_MIN;
    }
}


int
loyalty_stats_top_insert(loyalty_stats_top_t *t, const void *name,
    size_t len, int64_t v)
{
    size_t               i;
    loyalty_stats_row_t  row;

    if (t->k == 0) {
        return 0;
    }

    row.v = v;
    row.len = (uint32_t) len;
    memcpy(row.name, name, len);

    if (t->n == t->k) {
        if (loyalty_stats_cmp(&row, &t->pool[t->heap[0]], t->sort) >= 0) {
            return 0;
        }

        t->pool[t->heap[0]] = row;
        loyalty_stats_top_down(t, t->n, 0);
        loyalty_stats_top_floor(t);

        return 0;
    }

    if (t->n == t->nalloc && loyalty_stats_top_grow(t) != 0) {
        return ENOMEM;
    }

    t->pool[t->n] = row;
    t->heap[t->n] = (uint32_t) t->n;

    for (i = t->n++; i > 0 && loyalty_stats_top_cmp(t, i, (i - 1) / 2) > 0;
         i = (i - 1) / 2)
    {
        loyalty_stats_top_swap(t, i, (i - 1) / 2);
    }

    loyalty_stats_top_floor(t);

    return 0;
}


/* the heap in order, first to last: the last row to the end, again */
void
loyalty_stats_top_sort(loyalty_stats_top_t *t)
{
    size_t  i;

    for (i = t->n; i-- > 1; ) {
        loyalty_stats_top_swap(t, 0, i);
        loyalty_stats_top_down(t, i, 0);
    }
}
