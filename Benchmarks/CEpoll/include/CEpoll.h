// epoll for socket-bench: Glibc's Swift module does not export <sys/epoll.h>.
#pragma once
#include <sys/epoll.h>
