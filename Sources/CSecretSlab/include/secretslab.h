#ifndef TOKENBROKER_SECRETSLAB_H
#define TOKENBROKER_SECRETSLAB_H

#include <stddef.h>
#include <stdint.h>

/* Where the daemon keeps the bytes of its secrets (tokens, tickets, keys): outside malloc's
   general heap, in size-classed slabs of their own.

   A token lives for minutes to hours and is replaced by one of about the same size. In malloc's
   heap each replacement leaves a hole between longer-lived objects that malloc cannot hand back,
   and after thousands of refreshes those holes are a large share of the daemon's memory. Here a
   freed slot goes back to the free list of its size class, and the next token of that size takes
   it: the memory held follows the number of live secrets, not the history of refreshes.

   Size classes are multiples of 32 bytes up to 8 KiB (a 1.2 KB token wastes at most 31 bytes);
   larger secrets get a mapping of their own. Every slot is zeroed when freed, and the slabs are
   marked MADV_DONTDUMP, so a core dump holds none of them. */

/* Room for `count` bytes; never NULL (the process aborts when the kernel refuses memory). A
   count of 0 gives a pointer that must still be passed to tb_secret_free with 0. */
void *tb_secret_alloc(size_t count);

/* Zeroes and frees what tb_secret_alloc(count) returned. */
void tb_secret_free(void *slot, size_t count);

typedef struct {
    uint64_t live;     /* secrets allocated and not freed */
    uint64_t payload;  /* their bytes */
    uint64_t slots;    /* the bytes of the slots that hold them */
    uint64_t mapped;   /* everything the slabs have mapped (slots in use, free slots, unused tail) */
} tb_secret_stats;

void tb_secret_usage(tb_secret_stats *out);

#endif
