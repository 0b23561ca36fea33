/*
 * The harness's ceiling: a minimal single-threaded epoll milter in C, doing the same two jobs as
 * the other peers with as little work as the protocol allows. No library, no callbacks, no
 * allocation per packet. What it reaches is what the load generator and the kernel allow on
 * this machine, so the other peers' figures can be read against it.
 *
 *   epoll-peer noop|work unix:/path|inet:PORT@127.0.0.1
 *
 * It negotiates like a milter that implements every callback (no NO or NR bits), answers every
 * command that expects a reply, and writes the end-of-message packets with one write.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define MAX_PAYLOAD (1u << 20)

typedef struct {
  int fd;
  uint8_t *in;
  size_t inlen, incap;
  unsigned long body_bytes;
  int reject;
} session;

static int work_job;
static volatile sig_atomic_t stopping;

static void on_signal(int sig) {
  (void)sig;
  stopping = 1;
}

static int listen_on(const char *spec) {
  int fd;
  if (strncmp(spec, "unix:", 5) == 0) {
    struct sockaddr_un un = { .sun_family = AF_UNIX };
    if (strlen(spec + 5) >= sizeof un.sun_path) return -1;
    strcpy(un.sun_path, spec + 5);
    unlink(un.sun_path);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&un, sizeof un) < 0) return -1;
  } else if (strncmp(spec, "inet:", 5) == 0) {
    const char *at = strchr(spec + 5, '@');
    struct sockaddr_in in = { .sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(spec + 5)) };
    if (inet_pton(AF_INET, at ? at + 1 : "127.0.0.1", &in.sin_addr) != 1) return -1;
    fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (fd < 0 || bind(fd, (struct sockaddr *)&in, sizeof in) < 0) return -1;
  } else {
    return -1;
  }
  return listen(fd, 1024) < 0 ? -1 : fd;
}

static void put_packet(uint8_t *out, size_t *len, char cmd, const void *payload, size_t n) {
  uint32_t be = htonl((uint32_t)(n + 1));
  memcpy(out + *len, &be, 4);
  out[*len + 4] = (uint8_t)cmd;
  if (n) memcpy(out + *len + 5, payload, n);
  *len += 5 + n;
}

/* Writes a reply; replies are tiny, so a full socket buffer means a broken peer. */
static int send_all(int fd, const uint8_t *data, size_t len) {
  while (len > 0) {
    ssize_t w = write(fd, data, len);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return -1;
    data += w;
    len -= (size_t)w;
  }
  return 0;
}

/* Handles one packet; returns -1 to close the session. */
static int handle(session *s, char cmd, const uint8_t *payload, size_t len) {
  uint8_t out[256];
  size_t n = 0;
  switch (cmd) {
  case 'O': {
    uint32_t reply[3] = { htonl(6), htonl(work_job ? 0x01 : 0), htonl(0) };
    put_packet(out, &n, 'O', reply, sizeof reply);
    break;
  }
  case 'D':
    return 0;
  case 'A':
    s->body_bytes = 0;
    s->reject = 0;
    return 0;
  case 'Q':
    return -1;
  case 'M':
    s->body_bytes = 0;
    s->reject = 0;
    put_packet(out, &n, 'c', NULL, 0);
    break;
  case 'L':
    if (work_job && len > 8 && strncasecmp((const char *)payload, "Subject", 8) == 0 &&
        memmem(payload + 8, len - 8, "REJECTME", 8) != NULL)
      s->reject = 1;
    put_packet(out, &n, 'c', NULL, 0);
    break;
  case 'B':
    s->body_bytes += len;
    put_packet(out, &n, 'c', NULL, 0);
    break;
  case 'E':
    if (work_job && s->reject) {
      put_packet(out, &n, 'r', NULL, 0);
    } else {
      if (work_job) {
        char header[48];
        int hlen = snprintf(header, sizeof header, "X-Bench%c%lu", 0, s->body_bytes);
        put_packet(out, &n, 'h', header, (size_t)hlen + 1);
      }
      put_packet(out, &n, 'c', NULL, 0);
    }
    s->body_bytes = 0;
    s->reject = 0;
    break;
  default: /* C H R T N U */
    put_packet(out, &n, 'c', NULL, 0);
    break;
  }
  return send_all(s->fd, out, n);
}

static int on_readable(session *s) {
  for (;;) {
    if (s->incap - s->inlen < 65536) {
      s->incap = s->incap ? s->incap * 2 : 262144;
      s->in = realloc(s->in, s->incap);
      if (!s->in) return -1;
    }
    ssize_t r = read(s->fd, s->in + s->inlen, s->incap - s->inlen);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    if (r <= 0) return -1;
    s->inlen += (size_t)r;
  }
  size_t pos = 0;
  while (s->inlen - pos >= 5) {
    uint32_t len;
    memcpy(&len, s->in + pos, 4);
    len = ntohl(len);
    if (len == 0 || len - 1 > MAX_PAYLOAD) return -1;
    if (s->inlen - pos < 4 + (size_t)len) break;
    if (handle(s, (char)s->in[pos + 4], s->in + pos + 5, len - 1) < 0) return -1;
    pos += 4 + len;
  }
  memmove(s->in, s->in + pos, s->inlen - pos);
  s->inlen -= pos;
  return 0;
}

int main(int argc, char **argv) {
  if (argc != 3 || (strcmp(argv[1], "noop") != 0 && strcmp(argv[1], "work") != 0)) {
    fprintf(stderr, "usage: %s noop|work unix:/path|inet:PORT@127.0.0.1\n", argv[0]);
    return 2;
  }
  work_job = strcmp(argv[1], "work") == 0;
  signal(SIGPIPE, SIG_IGN);
  struct sigaction sa = { .sa_handler = on_signal };
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  int lfd = listen_on(argv[2]);
  if (lfd < 0) {
    fprintf(stderr, "epoll-peer: cannot listen on %s: %s\n", argv[2], strerror(errno));
    return 1;
  }
  int ep = epoll_create1(EPOLL_CLOEXEC);
  struct epoll_event lev = { .events = EPOLLIN, .data.ptr = NULL };
  epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &lev);
  while (!stopping) {
    struct epoll_event evs[256];
    int n = epoll_wait(ep, evs, 256, 500);
    for (int i = 0; i < n; i++) {
      session *s = evs[i].data.ptr;
      if (s == NULL) {
        int fd;
        while ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
          int one = 1;
          setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one); /* fails harmlessly on unix */
          session *ns = calloc(1, sizeof *ns);
          ns->fd = fd;
          struct epoll_event ev = { .events = EPOLLIN, .data.ptr = ns };
          epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
        }
        continue;
      }
      if (on_readable(s) < 0) {
        close(s->fd);
        free(s->in);
        free(s);
      }
    }
  }
  if (strncmp(argv[2], "unix:", 5) == 0) unlink(argv[2] + 5);
  return 0;
}
