#define _GNU_SOURCE
#include "secretslab.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

enum {
    GRANULE = 32,
    MAX_SMALL = 8192,
    CLASSES = MAX_SMALL / GRANULE,
    CHUNK = 64 * 1024,
};

struct free_slot { struct free_slot *next; };

struct size_class {
    struct free_slot *free;  /* freed slots, reused first */
    char *next;              /* the untouched rest of the newest chunk */
    char *end;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct size_class classes[CLASSES];
static tb_secret_stats stats;
static char empty_slot[1];

static size_t page_round(size_t n) {
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    return (n + page - 1) / page * page;
}

static void *map(size_t length) {
    void *p = mmap(NULL, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) abort();
    (void)madvise(p, length, MADV_DONTDUMP);
    return p;
}

void *tb_secret_alloc(size_t count) {
    if (count == 0) return empty_slot;
    if (count > MAX_SMALL) {
        size_t length = page_round(count);
        void *p = map(length);
        pthread_mutex_lock(&lock);
        stats.live += 1;
        stats.payload += count;
        stats.slots += length;
        stats.mapped += length;
        pthread_mutex_unlock(&lock);
        return p;
    }
    size_t index = (count - 1) / GRANULE;
    size_t size = (index + 1) * GRANULE;
    pthread_mutex_lock(&lock);
    struct size_class *c = &classes[index];
    void *slot;
    if (c->free) {
        slot = c->free;
        c->free = c->free->next;
        ((struct free_slot *)slot)->next = NULL;
    } else {
        if (c->next == NULL || (size_t)(c->end - c->next) < size) {
            size_t length = CHUNK > 16 * size ? CHUNK : page_round(16 * size);
            c->next = map(length);
            c->end = c->next + length;
            stats.mapped += length;
        }
        slot = c->next;
        c->next += size;
    }
    stats.live += 1;
    stats.payload += count;
    stats.slots += size;
    pthread_mutex_unlock(&lock);
    return slot;
}

void tb_secret_free(void *slot, size_t count) {
    if (count == 0 || slot == NULL) return;
    if (count > MAX_SMALL) {
        size_t length = page_round(count);
        explicit_bzero(slot, count);
        munmap(slot, length);
        pthread_mutex_lock(&lock);
        stats.live -= 1;
        stats.payload -= count;
        stats.slots -= length;
        stats.mapped -= length;
        pthread_mutex_unlock(&lock);
        return;
    }
    size_t index = (count - 1) / GRANULE;
    explicit_bzero(slot, (index + 1) * GRANULE);
    pthread_mutex_lock(&lock);
    struct free_slot *f = slot;
    f->next = classes[index].free;
    classes[index].free = f;
    stats.live -= 1;
    stats.payload -= count;
    stats.slots -= (index + 1) * GRANULE;
    pthread_mutex_unlock(&lock);
}

void tb_secret_usage(tb_secret_stats *out) {
    pthread_mutex_lock(&lock);
    *out = stats;
    pthread_mutex_unlock(&lock);
}
