/* UDP sockets of the streaming layer (stream.h): bind, non-blocking receive, single send. */
#include "../stream.h"
#include "udp_addr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

uint64_t neuron_monotonic_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int neuron_peer_to_sockaddr(const neuron_udp_peer *p, struct sockaddr_storage *ss, socklen_t *len) {
    memset(ss, 0, sizeof *ss);
    if (p->family == 4) {
        struct sockaddr_in *a = (struct sockaddr_in *)ss;
        a->sin_family = AF_INET;
        a->sin_port = htons(p->port);
        memcpy(&a->sin_addr, p->addr, 4);
        *len = sizeof *a;
        return 1;
    }
    if (p->family == 6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons(p->port);
        memcpy(&a->sin6_addr, p->addr, 16);
        a->sin6_scope_id = p->scope;
        *len = sizeof *a;
        return 1;
    }
    return 0;
}

static void sockaddr_to_peer(const struct sockaddr_storage *ss, neuron_udp_peer *p) {
    memset(p, 0, sizeof *p);
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
        p->family = 4;
        p->port = ntohs(a->sin_port);
        memcpy(p->addr, &a->sin_addr, 4);
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
        p->family = 6;
        p->port = ntohs(a->sin6_port);
        memcpy(p->addr, &a->sin6_addr, 16);
        p->scope = a->sin6_scope_id;
    }
}

int32_t neuron_udp_open(const char *ip, uint32_t port, uint32_t sndbuf, uint32_t rcvbuf, int32_t *fd_out) {
    if (ip == NULL || fd_out == NULL || port > 65535) return NEURON_EINVAL;
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    socklen_t len;
    struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, ip, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)port);
        len = sizeof *a4;
    } else if (inet_pton(AF_INET6, ip, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)port);
        len = sizeof *a6;
    } else {
        return NEURON_EINVAL;
    }
    int fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return NEURON_EIO;
    if (sndbuf) {
        int v = (int)(sndbuf > (1u << 30) ? (1u << 30) : sndbuf);
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &v, sizeof v);
    }
    if (rcvbuf) {
        int v = (int)(rcvbuf > (1u << 30) ? (1u << 30) : rcvbuf);
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, sizeof v);
    }
    /* A full send queue must not stall the caller for long: bound each send. */
    struct timeval tv = {.tv_sec = 0, .tv_usec = 20000};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (bind(fd, (struct sockaddr *)&ss, len) != 0) {
        close(fd);
        return NEURON_EIO;
    }
    struct sockaddr_storage bound;
    socklen_t blen = sizeof bound;
    if (getsockname(fd, (struct sockaddr *)&bound, &blen) != 0) {
        close(fd);
        return NEURON_EIO;
    }
    neuron_udp_peer p;
    sockaddr_to_peer(&bound, &p);
    *fd_out = fd;
    return p.port;
}

int32_t neuron_udp_recv(int32_t fd, uint8_t *buf, uint32_t cap, neuron_udp_peer *from) {
    if (fd < 0 || buf == NULL || from == NULL || cap == 0) return NEURON_EINVAL;
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    for (;;) {
        ssize_t n = recvfrom(fd, buf, cap, MSG_DONTWAIT | MSG_TRUNC, (struct sockaddr *)&ss, &len);
        if (n >= 0) {
            sockaddr_to_peer(&ss, from);
            return (int32_t)((size_t)n > cap ? cap : (size_t)n);
        }
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
        /* ICMP errors from earlier sends surface here: they are not fatal for the socket. */
        if (errno == ECONNREFUSED || errno == EHOSTUNREACH || errno == ENETUNREACH) continue;
        return NEURON_EIO;
    }
}

int32_t neuron_udp_send(int32_t fd, const uint8_t *buf, uint32_t len, const neuron_udp_peer *to) {
    if (fd < 0 || (buf == NULL && len) || to == NULL) return NEURON_EINVAL;
    struct sockaddr_storage ss;
    socklen_t sl;
    if (!neuron_peer_to_sockaddr(to, &ss, &sl)) return NEURON_EINVAL;
    ssize_t n = sendto(fd, buf, len, 0, (struct sockaddr *)&ss, sl);
    return n < 0 ? NEURON_EIO : (int32_t)n;
}

void neuron_udp_close(int32_t fd) {
    if (fd >= 0) close(fd);
}
