// Intentionally empty: the target only exports <sys/epoll.h> to Swift.
#include "CEpoll.h"
