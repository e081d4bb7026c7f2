/*
 * floor: the lower bound for scripts/bench.sh. A minimal single-threaded HTTP/1.1 server on a Unix
 * socket that answers every request with the same fixed bytes: the daemon's full token answer
 * (status line, header fields and body), captured from it before the loads and given as a file.
 * It shows what a server on this machine can reach for this answer over this socket with one
 * thread and one epoll loop, so the bench table can show tokenbroker/floor next to
 * tokenbroker/nginx.
 *
 * Per request it does what the daemon must do and nothing more: accept4 (non-blocking),
 * SO_PEERCRED for each new connection, recv into a per-connection buffer, find the end of each
 * request head (across reads, several pipelined heads in one read), look for `Connection: close`,
 * and one send per batch of answers; the rest of a short send waits for EPOLLOUT. Left out on
 * purpose: routing and request-target parsing, the access check, metrics, timers and the token
 * lookup. Requests are GETs without a body.
 *
 * Like the daemon, a new connection's first request is read right after accept, before its
 * descriptor is added to epoll: a client that sends one request with `Connection: close` is
 * answered and closed without its descriptor ever entering epoll. Doing the same here keeps the
 * comparison with a connection per request fair.
 *
 * Also like the daemon: epoll is level-triggered, at most 64 accepts per wake-up of the listener,
 * one recv per readable event, no reading while answers are pending, and a request with
 * `Connection: close` is answered with `Connection: close` added to the head and the connection
 * is closed after it (what follows it is not read).
 *
 * Usage: floor SOCKET_PATH ANSWER_FILE
 * Prints "floor: listening on SOCKET_PATH" once listening; exits on SIGTERM or SIGINT.
 * Build: cc -O2 -Wall -Wextra -o floor floor.c
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

/* The daemon's limit for a request head (ServerLimits.maxHeaderBytes). */
#define IN_CAPACITY 8192
#define MAX_EVENTS 256
#define ACCEPTS_PER_WAKE 64

struct conn {
    int fd;
    int registered;          /* added to epoll */
    unsigned events;         /* the interest registered */
    int closing;             /* close once the pending bytes are sent */
    uid_t uid;               /* from SO_PEERCRED */
    char *pending;           /* unsent rest of a batch of answers */
    size_t pending_len, pending_off;
    size_t in_len;           /* bytes in `in` */
    size_t scanned;          /* `in` holds no head end before this offset */
    char in[IN_CAPACITY];
};

static int epfd = -1;
static char *answer, *close_answer;  /* keep-alive answer; the same with `Connection: close` */
static size_t answer_len, close_answer_len;
static char *out;                    /* a batch of answers */
static size_t out_capacity;
static volatile sig_atomic_t stopping;
static unsigned long long accepted, answered, uid_sum;

static void on_signal(int sig) {
    (void)sig;
    stopping = 1;
}

static void die(const char *what) {
    perror(what);
    exit(1);
}

static void conn_close(struct conn *c) {
    close(c->fd); /* also leaves the epoll set */
    free(c->pending);
    free(c);
}

/* Returns 0 when the connection was closed. */
static int set_events(struct conn *c, unsigned events) {
    if (c->registered && c->events == events) return 1;
    struct epoll_event ev = {.events = events, .data.ptr = c};
    if (epoll_ctl(epfd, c->registered ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, c->fd, &ev) != 0) {
        conn_close(c);
        return 0;
    }
    c->registered = 1;
    c->events = events;
    return 1;
}

/* Whether a request head has a Connection field with the `close` option (names and values
 * compared case-insensitively, the value a comma-separated list). */
static int wants_close(const char *head, size_t len) {
    const char *end = head + len;
    const char *p = memchr(head, '\n', len); /* past the request line */
    while (p != NULL && ++p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (eol == NULL) break;
        const char *line_end = (eol > p && eol[-1] == '\r') ? eol - 1 : eol;
        if (line_end - p >= 11 && strncasecmp(p, "connection:", 11) == 0) {
            const char *v = p + 11;
            while (v < line_end) {
                while (v < line_end && (*v == ' ' || *v == '\t' || *v == ',')) v++;
                const char *t = v;
                while (v < line_end && *v != ',') v++;
                const char *te = v;
                while (te > t && (te[-1] == ' ' || te[-1] == '\t')) te--;
                if (te - t == 5 && strncasecmp(t, "close", 5) == 0) return 1;
            }
        }
        p = eol;
    }
    return 0;
}

/* Sends bytes, keeping what the socket does not take. Returns 0 when the connection was closed. */
static int send_answers(struct conn *c, const char *bytes, size_t len, int close_after) {
    ssize_t n = send(c->fd, bytes, len, MSG_NOSIGNAL);
    if (n < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            conn_close(c);
            return 0;
        }
        n = 0;
    }
    if ((size_t)n == len) {
        if (close_after) {
            conn_close(c);
            return 0;
        }
        return 1;
    }
    c->pending_len = len - (size_t)n;
    c->pending_off = 0;
    c->pending = malloc(c->pending_len);
    if (c->pending == NULL) die("malloc");
    memcpy(c->pending, bytes + n, c->pending_len);
    c->closing = close_after;
    return set_events(c, EPOLLOUT);
}

/* One recv, then an answer for every complete head in the buffer. Returns 0 when the
 * connection was closed. */
static int on_readable(struct conn *c) {
    ssize_t n = recv(c->fd, c->in + c->in_len, IN_CAPACITY - c->in_len, 0);
    if (n == 0) {
        conn_close(c);
        return 0;
    }
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return 1;
        conn_close(c);
        return 0;
    }
    c->in_len += (size_t)n;

    size_t pos = 0, count = 0, from = c->scanned;
    int close_after = 0;
    for (;;) {
        char *end = memmem(c->in + from, c->in_len - from, "\r\n\r\n", 4);
        if (end == NULL) break;
        size_t head_end = (size_t)(end - c->in) + 4;
        count++;
        close_after = wants_close(c->in + pos, head_end - pos);
        pos = from = head_end;
        if (close_after) break;
    }
    if (close_after) {
        c->in_len = 0;
    } else if (pos > 0) {
        c->in_len -= pos;
        memmove(c->in, c->in + pos, c->in_len);
    }
    c->scanned = c->in_len >= 3 ? c->in_len - 3 : 0;

    if (count == 0) {
        if (c->in_len == IN_CAPACITY) { /* a head over the limit */
            conn_close(c);
            return 0;
        }
        return 1;
    }
    answered += count;
    if (count == 1) {
        return close_after ? send_answers(c, close_answer, close_answer_len, 1)
                           : send_answers(c, answer, answer_len, 0);
    }
    size_t total = (count - 1) * answer_len + (close_after ? close_answer_len : answer_len);
    if (total > out_capacity) {
        out = realloc(out, total);
        if (out == NULL) die("realloc");
        out_capacity = total;
    }
    char *w = out;
    for (size_t i = 1; i < count; i++, w += answer_len) memcpy(w, answer, answer_len);
    if (close_after) memcpy(w, close_answer, close_answer_len);
    else memcpy(w, answer, answer_len);
    return send_answers(c, out, total, close_after);
}

static void on_writable(struct conn *c) {
    while (c->pending_off < c->pending_len) {
        ssize_t n = send(c->fd, c->pending + c->pending_off, c->pending_len - c->pending_off, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) return;
            if (errno == EINTR) continue;
            conn_close(c);
            return;
        }
        c->pending_off += (size_t)n;
    }
    free(c->pending);
    c->pending = NULL;
    c->pending_len = c->pending_off = 0;
    if (c->closing) {
        conn_close(c);
        return;
    }
    set_events(c, EPOLLIN);
}

static void on_listener(int listener) {
    for (int i = 0; i < ACCEPTS_PER_WAKE; i++) {
        int fd = accept4(listener, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) return; /* EAGAIN, or an error for which the next wake-up will do */
        struct ucred cred;
        socklen_t cred_len = sizeof cred;
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cred_len) != 0) {
            close(fd);
            continue;
        }
        struct conn *c = malloc(sizeof *c);
        if (c == NULL) die("malloc");
        c->fd = fd;
        c->registered = 0;
        c->events = 0;
        c->closing = 0;
        c->uid = cred.uid;
        c->pending = NULL;
        c->pending_len = c->pending_off = 0;
        c->in_len = c->scanned = 0;
        accepted++;
        uid_sum += c->uid;
        /* The request usually arrives with the connection: read it before epoll sees the fd. */
        if (on_readable(c) && !c->registered) set_events(c, EPOLLIN);
    }
}

static void load_answer(const char *path) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) die(path);
    struct stat st;
    if (fstat(fd, &st) != 0) die(path);
    answer_len = (size_t)st.st_size;
    answer = malloc(answer_len + 1);
    if (answer == NULL) die("malloc");
    size_t got = 0;
    while (got < answer_len) {
        ssize_t n = read(fd, answer + got, answer_len - got);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) die(path);
        got += (size_t)n;
    }
    close(fd);
    char *head_end = memmem(answer, answer_len, "\r\n\r\n", 4);
    if (head_end == NULL || strncmp(answer, "HTTP/1.1 ", 9) != 0) {
        fprintf(stderr, "floor: %s is not an HTTP/1.1 response (status line, header fields, body)\n", path);
        exit(1);
    }
    /* The daemon's answer to `Connection: close`: the same with that field last in the head. */
    static const char field[] = "Connection: close\r\n";
    size_t split = (size_t)(head_end - answer) + 2;
    close_answer_len = answer_len + sizeof field - 1;
    close_answer = malloc(close_answer_len);
    if (close_answer == NULL) die("malloc");
    memcpy(close_answer, answer, split);
    memcpy(close_answer + split, field, sizeof field - 1);
    memcpy(close_answer + split + sizeof field - 1, answer + split, answer_len - split);
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: floor SOCKET_PATH ANSWER_FILE\n");
        return 2;
    }
    const char *path = argv[1];
    load_answer(argv[2]);

    struct sockaddr_un address = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof address.sun_path) {
        fprintf(stderr, "floor: the socket path is too long: %s\n", path);
        return 1;
    }
    strcpy(address.sun_path, path);
    int listener = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (listener < 0) die("socket");
    struct stat st;
    if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode)) unlink(path);
    if (bind(listener, (struct sockaddr *)&address, sizeof address) != 0) die(path);
    if (chmod(path, 0666) != 0) die(path);
    if (listen(listener, 512) != 0) die("listen"); /* the daemon's backlog */

    epfd = epoll_create1(EPOLL_CLOEXEC);
    if (epfd < 0) die("epoll_create1");
    struct epoll_event lev = {.events = EPOLLIN, .data.ptr = NULL};
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, listener, &lev) != 0) die("epoll_ctl");

    /* SIGTERM and SIGINT are blocked except inside epoll_pwait: no signal is lost between the
     * check of `stopping` and the wait. */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigset_t blocked, waiting;
    sigemptyset(&blocked);
    sigaddset(&blocked, SIGTERM);
    sigaddset(&blocked, SIGINT);
    sigprocmask(SIG_BLOCK, &blocked, &waiting);
    sigdelset(&waiting, SIGTERM);
    sigdelset(&waiting, SIGINT);

    printf("floor: listening on %s\n", path);
    fflush(stdout);

    struct epoll_event events[MAX_EVENTS];
    while (!stopping) {
        int count = epoll_pwait(epfd, events, MAX_EVENTS, -1, &waiting);
        if (count < 0) {
            if (errno == EINTR) continue;
            die("epoll_pwait");
        }
        for (int i = 0; i < count; i++) {
            struct conn *c = events[i].data.ptr;
            if (c == NULL) {
                on_listener(listener);
            } else if (events[i].events & EPOLLOUT) {
                on_writable(c);
            } else {
                on_readable(c);
            }
        }
    }
    close(listener);
    unlink(path);
    printf("floor: stopped; %llu connections, %llu answers (peer uid sum %llu)\n", accepted, answered, uid_sum);
    return 0;
}
