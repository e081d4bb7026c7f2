#ifndef TOKENBROKER_CSHIMS_H
#define TOKENBROKER_CSHIMS_H

#include <sys/prctl.h>

/* prctl is variadic, which Swift cannot call: these fix its arguments. */
static inline int tokenbroker_set_dumpable(int dumpable) {
    return prctl(PR_SET_DUMPABLE, (unsigned long)dumpable, 0UL, 0UL, 0UL);
}

static inline int tokenbroker_get_dumpable(void) {
    return prctl(PR_GET_DUMPABLE, 0UL, 0UL, 0UL, 0UL);
}

#endif
