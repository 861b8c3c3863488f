/* Internal: neuron_udp_peer ↔ sockaddr conversion shared by the stream sources. */
#ifndef NEURON_STREAM_UDP_ADDR_H
#define NEURON_STREAM_UDP_ADDR_H
#include "../stream.h"

#include <sys/socket.h>

/* Fills ss/len from a peer; 0 for an unknown family. */
int neuron_peer_to_sockaddr(const neuron_udp_peer *p, struct sockaddr_storage *ss, socklen_t *len);

#endif
