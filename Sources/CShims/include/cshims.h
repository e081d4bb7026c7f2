#ifndef TOKENBROKER_CSHIMS_H
#define TOKENBROKER_CSHIMS_H

#include <errno.h>
#include <sys/prctl.h>
#include <pthread.h>
#include <malloc.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <unistd.h>

/* prctl is variadic, which Swift cannot call: these fix its arguments. */
static inline int tokenbroker_set_dumpable(int dumpable) {
    return prctl(PR_SET_DUMPABLE, (unsigned long)dumpable, 0UL, 0UL, 0UL);
}

static inline int tokenbroker_get_dumpable(void) {
    return prctl(PR_GET_DUMPABLE, 0UL, 0UL, 0UL, 0UL);
}

/* At most two malloc arenas: the daemon's threads are few, and each extra arena keeps its own
   freed memory. */
static inline void tokenbroker_limit_arenas(void) { mallopt(M_ARENA_MAX, 2); }

/* Hands freed heap pages back to the kernel. */
static inline void tokenbroker_trim_heap(void) { malloc_trim(0); }

/* What malloc holds: in use by the program, free inside its arenas, and mapped on its own. */
static inline void tokenbroker_heap_usage(unsigned long long *in_use, unsigned long long *free_bytes, unsigned long long *mapped) {
    struct mallinfo2 info = mallinfo2();
    *in_use = info.uordblks + info.hblkhd;
    *free_bytes = info.fordblks;
    *mapped = info.hblkhd;
}

/* pthread_setname_np is declared only under _GNU_SOURCE. Linux allows 15 characters. */
extern int pthread_setname_np(pthread_t thread, const char *name);
static inline void tokenbroker_name_thread(const char *name) { pthread_setname_np(pthread_self(), name); }

/* The server loop's system calls, made directly. The daemon has other threads, so glibc's
   accept4, recv, send, close and epoll_wait each switch asynchronous thread cancellation on and
   off around the call (they are cancellation points); the loop's thread is never cancelled.
   `syscall` returns -1 and sets errno as the wrappers do. */
static inline int tokenbroker_accept(int fd) {
    return (int)syscall(SYS_accept4, fd, (void *)0, (void *)0, SOCK_NONBLOCK | SOCK_CLOEXEC);
}
static inline long tokenbroker_recv(int fd, void *bytes, size_t count) {
    return syscall(SYS_recvfrom, fd, bytes, count, 0, (void *)0, (void *)0);
}
static inline long tokenbroker_send(int fd, const void *bytes, size_t count) {
    return syscall(SYS_sendto, fd, bytes, count, MSG_NOSIGNAL, (void *)0, 0);
}
static inline int tokenbroker_close(int fd) { return (int)syscall(SYS_close, fd); }
/* errno, read where it is: the Glibc module's `errno` is an out-of-line call into its overlay. */
static inline int tokenbroker_errno(void) { return errno; }
/* epoll_pwait with no signal mask: what epoll_wait is (and the only form on some architectures). */
static inline int tokenbroker_epoll_wait(int epfd, struct epoll_event *events, int capacity, int timeout) {
    return (int)syscall(SYS_epoll_pwait, epfd, events, capacity, timeout, (void *)0, (size_t)8);
}

/* posix_spawn_file_actions_addclosefrom_np (glibc 2.34) is declared only under _GNU_SOURCE. It
   closes every descriptor from `from` up in the child, close-on-exec or not. */
extern int posix_spawn_file_actions_addclosefrom_np(posix_spawn_file_actions_t *actions, int from);
static inline int tokenbroker_spawn_closefrom(posix_spawn_file_actions_t *actions, int from) {
    return posix_spawn_file_actions_addclosefrom_np(actions, from);
}

/* The epoll event's data as the descriptor it was registered with (the struct is packed on x86_64). */
static inline int tokenbroker_epoll_fd(const struct epoll_event *event) { return event->data.fd; }
static inline unsigned tokenbroker_epoll_events(const struct epoll_event *event) { return event->events; }
static inline int tokenbroker_epoll_ctl(int epfd, int op, int fd, unsigned events) {
    struct epoll_event event = { .events = events, .data = { .fd = fd } };
    return epoll_ctl(epfd, op, fd, &event);
}

#endif
