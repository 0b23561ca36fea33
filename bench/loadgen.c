/*
 * loadgen: a milter load generator that plays Postfix (milter protocol v6).
 *
 * One process, one epoll loop, many connections. Each connection negotiates like Postfix
 * (OPTNEG offer version 6, actions 0x1FF, protocol 0x1FFFFF), sends the macros Postfix sends
 * per stage in the same write as the command, honours the NO and NR bits of the milter's reply,
 * and runs messages: MAIL, one RCPT, DATA, 10 headers, EOH, body chunks of at most 65535
 * bytes, EOB, then ABORT as Postfix's mail_reset does after every transaction.
 *
 * It is written in C so that it is never the bottleneck: packets are queued as iovecs (the
 * body is sent straight from one shared buffer) and written with one writev per turn, which is
 * also what Postfix's buffered streams do. It does not set TCP_NODELAY (Postfix does not), so a
 * milter that writes its end-of-message packets one by one meets Nagle plus delayed ACK.
 *
 * Output: one JSON object on stdout. Modes:
 *   load: --conns N, one connection reused for many messages (or --per-message: a new
 *         connection for every message), for --duration seconds or --messages count.
 *   idle: --idle N opens N connections, negotiates, sends CONNECT and HELO, prints
 *         "READY <n>" and holds them until stdin closes (or --hold seconds), then reports
 *         how many were still open.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define MILTER_CHUNK 65535
#define MAX_PACKET (1u << 24)
#define HEADER_COUNT 10
#define MAX_ERRORS 1000
#define IOV_BATCH 512

/* Protocol bits (SMFIP_*) the generator honours. */
#define P_NOCONNECT 0x1
#define P_NOHELO 0x2
#define P_NOMAIL 0x4
#define P_NORCPT 0x8
#define P_NOBODY 0x10
#define P_NOHDRS 0x20
#define P_NOEOH 0x40
#define P_NR_HDR 0x80
#define P_NODATA 0x200
#define P_SKIP 0x400
#define P_NR_CONN 0x1000
#define P_NR_HELO 0x2000
#define P_NR_MAIL 0x4000
#define P_NR_RCPT 0x8000
#define P_NR_DATA 0x10000
#define P_NR_EOH 0x40000
#define P_NR_BODY 0x80000

enum step {
  S_OPTNEG, S_CONNECT, S_HELO, S_MAIL, S_RCPT, S_DATA, S_HEADER, S_EOH, S_BODY, S_EOB, S_END,
  S_IDLE
};

typedef struct {
  int in_arena;      /* 1: bytes live in the connection's arena at `off`; 0: at `ptr` */
  size_t off;
  const uint8_t *ptr;
  size_t len;
} segment;

typedef struct conn {
  int fd;
  int connecting;    /* nonblocking connect in progress */
  int want_out;      /* EPOLLOUT registered */
  int dead;
  enum step step;
  int awaiting;      /* command byte whose reply is awaited, 0 when none */
  uint32_t proto;    /* protocol bits from the milter's OPTNEG reply */
  /* output queue */
  segment *segs;
  size_t nsegs, segcap, seghead, headoff;
  uint8_t *arena;
  size_t arenalen, arenacap;
  size_t packet_start; /* arena offset of the packet being built */
  /* input */
  uint8_t *in;
  size_t inlen, incap;
  /* the current message */
  long msg_no;
  int is_reject;
  int header_i;
  size_t body_off;
  uint64_t t_start;
  int in_message;
  int final_code;
  int xbench_count, xbench_ok, other_mods;
  int started;       /* has begun (or is ready to begin) its first message */
  struct conn *next_free;
} conn;

/* ---- options and global state ---- */
static struct {
  const char *socket_spec;
  int conns;
  size_t body_len;
  double duration;
  long messages;
  int per_message;
  int check_work;    /* 1: verify work-job replies; 0: verify no-op replies */
  /* --expect-header NAME:VALUE: every message must be accepted with exactly this one header
     added (the filter-chain peers); replaces the work job's X-Bench check */
  const char *expect_name;
  const char *expect_value;
  int reject_every;
  int idle;
  double hold;
  size_t chunk;      /* body bytes per B packet; Postfix uses 65535 */
} opt = { NULL, 1, 2048, 0, 0, 0, 0, NULL, NULL, 10, 0, 0, MILTER_CHUNK };

static struct sockaddr_storage target;
static socklen_t target_len;
static int epfd;
static uint8_t *body;
static uint64_t t_begin, t_deadline, t_hard_deadline, t_last_done;
static long next_msg, messages_done, accepted, rejected, check_failures, errors, opened;
static long replies[256];
static uint64_t *latencies;
static size_t nlat, latcap;
static int active, stopping, reported_failures, sessions_ready;
static conn *all_conns;
static conn **pending_connect;
static size_t npending, pendingcap;
static int idle_ready_printed;
static long idle_established, idle_dropped;

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("loadgen: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  exit(2);
}

static void *xrealloc(void *p, size_t n) {
  void *q = realloc(p, n);
  if (!q) die("out of memory");
  return q;
}

static void report_failure(const char *fmt, ...) {
  check_failures++;
  if (reported_failures++ >= 5) return;
  va_list ap;
  va_start(ap, fmt);
  fputs("loadgen: check failed: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
}

static void count_error(const char *what) {
  errors++;
  if (errors <= 5) fprintf(stderr, "loadgen: %s\n", what);
  if (errors >= MAX_ERRORS) die("too many errors, giving up");
}

/* ---- output queue ---- */
static void arena_reserve(conn *c, size_t n) {
  if (c->arenalen + n <= c->arenacap) return;
  size_t cap = c->arenacap ? c->arenacap : 4096;
  while (cap < c->arenalen + n) cap *= 2;
  c->arena = xrealloc(c->arena, cap);
  c->arenacap = cap;
}

static segment *seg_push(conn *c) {
  if (c->nsegs == c->segcap) {
    c->segcap = c->segcap ? c->segcap * 2 : 64;
    c->segs = xrealloc(c->segs, c->segcap * sizeof(segment));
  }
  return &c->segs[c->nsegs++];
}

static void put_bytes(conn *c, const void *data, size_t n) {
  arena_reserve(c, n);
  memcpy(c->arena + c->arenalen, data, n);
  segment *last = c->nsegs > c->seghead ? &c->segs[c->nsegs - 1] : NULL;
  if (last && last->in_arena && last->off + last->len == c->arenalen) {
    last->len += n;
  } else {
    segment *s = seg_push(c);
    s->in_arena = 1;
    s->off = c->arenalen;
    s->ptr = NULL;
    s->len = n;
  }
  c->arenalen += n;
}

static void put_external(conn *c, const uint8_t *data, size_t n) {
  segment *s = seg_push(c);
  s->in_arena = 0;
  s->off = 0;
  s->ptr = data;
  s->len = n;
}

static void put_u32(conn *c, uint32_t v) {
  uint32_t be = htonl(v);
  put_bytes(c, &be, 4);
}

static void put_str(conn *c, const char *s) { put_bytes(c, s, strlen(s) + 1); }

/* Packets are built in the arena: a length placeholder, the command, the payload. */
static void packet_begin(conn *c, char cmd) {
  c->packet_start = c->arenalen;
  put_u32(c, 0);
  put_bytes(c, &cmd, 1);
}

static void packet_end(conn *c, size_t external_bytes) {
  uint32_t len = htonl((uint32_t)(c->arenalen - c->packet_start - 4 + external_bytes));
  memcpy(c->arena + c->packet_start, &len, 4);
}

static void packet_empty(conn *c, char cmd) {
  packet_begin(c, cmd);
  packet_end(c, 0);
}

static void update_events(conn *c, int want_out) {
  if (c->want_out == want_out) return;
  struct epoll_event ev = { .events = EPOLLIN | (want_out ? EPOLLOUT : 0), .data.ptr = c };
  if (epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev) < 0) die("epoll_ctl: %s", strerror(errno));
  c->want_out = want_out;
}

/* Writes what is queued; returns -1 on a broken connection. */
static int flush(conn *c) {
  while (c->seghead < c->nsegs) {
    struct iovec iov[IOV_BATCH];
    int n = 0;
    for (size_t i = c->seghead; i < c->nsegs && n < IOV_BATCH; i++, n++) {
      segment *s = &c->segs[i];
      const uint8_t *base = s->in_arena ? c->arena + s->off : s->ptr;
      size_t skip = i == c->seghead ? c->headoff : 0;
      iov[n].iov_base = (void *)(base + skip);
      iov[n].iov_len = s->len - skip;
    }
    ssize_t w = writev(c->fd, iov, n);
    if (w < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        update_events(c, 1);
        return 0;
      }
      if (errno == EINTR) continue;
      return -1;
    }
    size_t left = (size_t)w;
    while (left > 0) {
      segment *s = &c->segs[c->seghead];
      size_t rest = s->len - c->headoff;
      if (left >= rest) {
        left -= rest;
        c->seghead++;
        c->headoff = 0;
      } else {
        c->headoff += left;
        left = 0;
      }
    }
  }
  c->nsegs = c->seghead = c->headoff = 0;
  c->arenalen = 0;
  update_events(c, 0);
  return 0;
}

/* ---- what Postfix sends ---- */
static void queue_id(const conn *c, char *buf, size_t n) {
  snprintf(buf, n, "4B%08lX", c->msg_no);
}

/* A D packet for `stage` with name/value pairs (NULL-terminated list). */
static void macros(conn *c, char stage, ...) {
  packet_begin(c, 'D');
  put_bytes(c, &stage, 1);
  va_list ap;
  va_start(ap, stage);
  const char *name;
  while ((name = va_arg(ap, const char *)) != NULL) {
    const char *value = va_arg(ap, const char *);
    put_str(c, name);
    put_str(c, value);
  }
  va_end(ap);
  packet_end(c, 0);
}

static void header_at(const conn *c, int i, const char **name, char *value, size_t n) {
  static const char *names[HEADER_COUNT] = {
    "Received", "From", "To", "Subject", "Date", "Message-ID", "MIME-Version",
    "Content-Type", "Content-Transfer-Encoding", "X-Mailer",
  };
  *name = names[i];
  switch (i) {
  case 0:
    snprintf(value, n, "from client.bench.test (client.bench.test [192.0.2.10])\r\n\tby "
             "mx.bench.test (Postfix) with ESMTP id 4B%08lX\r\n\tfor <rcpt@example.net>; "
             "Sat, 22 Nov 2025 04:40:00 +0000 (UTC)", c->msg_no);
    break;
  case 1: snprintf(value, n, "Sender <sender@example.org>"); break;
  case 2: snprintf(value, n, "Recipient <rcpt@example.net>"); break;
  case 3:
    snprintf(value, n, "Benchmark message %ld%s", c->msg_no, c->is_reject ? " REJECTME" : "");
    break;
  case 4: snprintf(value, n, "Sat, 22 Nov 2025 04:40:00 +0000"); break;
  case 5: snprintf(value, n, "<%ld.bench@example.org>", c->msg_no); break;
  case 6: snprintf(value, n, "1.0"); break;
  case 7: snprintf(value, n, "text/plain; charset=us-ascii"); break;
  case 8: snprintf(value, n, "7bit"); break;
  default: snprintf(value, n, "milterkit-bench loadgen"); break;
  }
}

static void start_clock(void) {
  t_begin = now_ns();
  t_deadline = t_begin + (uint64_t)(opt.duration * 1e9);
}

static int stop_issuing(void) {
  if (stopping) return 1;
  if (opt.messages > 0 && next_msg >= opt.messages) stopping = 1;
  if (opt.duration > 0 && now_ns() >= t_deadline) stopping = 1;
  return stopping;
}

static void close_conn(conn *c);
static void open_conn(conn *c);
static void record_message(conn *c);

/* Closes a connection and, while messages are still being issued, opens its replacement. */
static void replace_conn(conn *c) {
  close_conn(c);
  if (!opt.idle && !stop_issuing()) open_conn(c);
}

/* Queues packets until one needs a reply, then writes them (Postfix flushes before reading). */
static void advance(conn *c) {
  char qid[16], value[512];
  const char *hname;
  while (!c->awaiting && !c->dead) {
    uint32_t p = c->proto;
    switch (c->step) {
    case S_OPTNEG:
      packet_begin(c, 'O');
      put_u32(c, 6);
      put_u32(c, 0x1FF);
      put_u32(c, 0x1FFFFF);
      packet_end(c, 0);
      c->awaiting = 'O';
      c->step = S_CONNECT;
      break;
    case S_CONNECT:
      macros(c, 'C', "j", "mx.bench.test", "{daemon_name}", "mx.bench.test", "{daemon_addr}",
             "127.0.0.1", "v", "Postfix 3.7.11", "_", "client.bench.test [192.0.2.10]", NULL);
      if (!(p & P_NOCONNECT)) {
        uint16_t port = htons(41234);
        packet_begin(c, 'C');
        put_str(c, "client.bench.test");
        put_bytes(c, "4", 1);
        put_bytes(c, &port, 2);
        put_str(c, "192.0.2.10");
        packet_end(c, 0);
        if (!(p & P_NR_CONN)) c->awaiting = 'C';
      }
      c->step = S_HELO;
      break;
    case S_HELO:
      macros(c, 'H', NULL);
      if (!(p & P_NOHELO)) {
        packet_begin(c, 'H');
        put_str(c, "client.bench.test");
        packet_end(c, 0);
        if (!(p & P_NR_HELO)) c->awaiting = 'H';
      }
      c->step = opt.idle ? S_IDLE : S_MAIL;
      break;
    case S_IDLE:
      if (flush(c) < 0) {
        count_error("write failed on an idle connection");
        close_conn(c);
        return;
      }
      idle_established++;
      if (c->inlen == 0) { /* an idle session needs no buffers until it is closed */
        free(c->in);
        c->in = NULL;
        c->incap = 0;
      }
      return;
    case S_MAIL:
      if (!c->started && !opt.per_message) {
        /* Reused connections measure the steady state: wait until every connection has
           negotiated, then start the clock and all of them together. */
        c->started = 1;
        if (++sessions_ready < opt.conns) {
          flush(c);
          return;
        }
        start_clock();
        for (int i = 0; i < opt.conns; i++)
          if (&all_conns[i] != c && !all_conns[i].dead) advance(&all_conns[i]);
      }
      if (stop_issuing()) {
        packet_empty(c, 'Q');
        flush(c);
        close_conn(c);
        return;
      }
      c->msg_no = next_msg++;
      c->is_reject = opt.reject_every > 0 && c->msg_no % opt.reject_every == opt.reject_every - 1;
      if (!opt.per_message) c->t_start = now_ns();
      c->in_message = 1;
      c->final_code = 0;
      c->xbench_count = c->xbench_ok = c->other_mods = 0;
      macros(c, 'M', "{mail_addr}", "sender@example.org", "{mail_host}", "example.org",
             "{mail_mailer}", "smtp", NULL);
      if (!(p & P_NOMAIL)) {
        char size[32];
        snprintf(size, sizeof size, "SIZE=%zu", opt.body_len + 600);
        packet_begin(c, 'M');
        put_str(c, "<sender@example.org>");
        put_str(c, size);
        put_str(c, "BODY=8BITMIME");
        packet_end(c, 0);
        if (!(p & P_NR_MAIL)) c->awaiting = 'M';
      }
      c->step = S_RCPT;
      break;
    case S_RCPT:
      queue_id(c, qid, sizeof qid);
      macros(c, 'R', "i", qid, "{rcpt_addr}", "rcpt@example.net", "{rcpt_host}", "example.net",
             "{rcpt_mailer}", "smtp", NULL);
      if (!(p & P_NORCPT)) {
        packet_begin(c, 'R');
        put_str(c, "<rcpt@example.net>");
        packet_end(c, 0);
        if (!(p & P_NR_RCPT)) c->awaiting = 'R';
      }
      c->step = S_DATA;
      break;
    case S_DATA:
      queue_id(c, qid, sizeof qid);
      macros(c, 'T', "i", qid, NULL);
      if (!(p & P_NODATA)) {
        packet_empty(c, 'T');
        if (!(p & P_NR_DATA)) c->awaiting = 'T';
      }
      c->step = S_HEADER;
      c->header_i = 0;
      break;
    case S_HEADER:
      if ((p & P_NOHDRS) || c->header_i >= HEADER_COUNT) {
        c->step = S_EOH;
        break;
      }
      queue_id(c, qid, sizeof qid);
      macros(c, 'L', "i", qid, NULL);
      header_at(c, c->header_i++, &hname, value, sizeof value);
      packet_begin(c, 'L');
      put_str(c, hname);
      put_str(c, value);
      packet_end(c, 0);
      if (!(p & P_NR_HDR)) c->awaiting = 'L';
      break;
    case S_EOH:
      if (!(p & P_NOEOH)) {
        queue_id(c, qid, sizeof qid);
        macros(c, 'N', "i", qid, NULL);
        packet_empty(c, 'N');
        if (!(p & P_NR_EOH)) c->awaiting = 'N';
      }
      c->step = S_BODY;
      c->body_off = 0;
      break;
    case S_BODY:
      if ((p & P_NOBODY) || c->body_off >= opt.body_len) {
        c->step = S_EOB;
        break;
      }
      {
        size_t n = opt.body_len - c->body_off;
        if (n > opt.chunk) n = opt.chunk;
        queue_id(c, qid, sizeof qid);
        macros(c, 'B', "i", qid, NULL);
        packet_begin(c, 'B');
        packet_end(c, n);
        put_external(c, body + c->body_off, n);
        c->body_off += n;
        if (!(p & P_NR_BODY)) c->awaiting = 'B';
      }
      break;
    case S_EOB:
      queue_id(c, qid, sizeof qid);
      macros(c, 'E', "i", qid, NULL);
      packet_empty(c, 'E');
      c->awaiting = 'E';
      c->step = S_END;
      break;
    case S_END:
      record_message(c);
      packet_empty(c, 'A');
      if (opt.per_message) {
        packet_empty(c, 'Q');
        flush(c);
        replace_conn(c);
        return;
      }
      c->step = S_MAIL;
      break;
    }
  }
  if (c->dead) return;
  if (flush(c) < 0) {
    count_error("write failed: connection closed by the milter");
    replace_conn(c);
  }
}

static void record_message(conn *c) {
  uint64_t t = now_ns();
  c->in_message = 0;
  messages_done++;
  t_last_done = t;
  if (nlat == latcap) {
    latcap = latcap ? latcap * 2 : 65536;
    latencies = xrealloc(latencies, latcap * sizeof(uint64_t));
  }
  latencies[nlat++] = t - c->t_start;
  int code = c->final_code;
  int is_accept = code == 'c' || code == 'a';
  if (is_accept) accepted++;
  if (code == 'r') rejected++;
  if (opt.expect_name) {
    if (!is_accept || c->xbench_count != 1 || !c->xbench_ok || c->other_mods) {
      report_failure("message %ld: final '%c', %d %s header(s), value %s, %d other change(s)",
                     c->msg_no, code, c->xbench_count, opt.expect_name,
                     c->xbench_ok ? "right" : "wrong", c->other_mods);
    }
  } else if (opt.check_work) {
    if (c->is_reject) {
      if (code != 'r') report_failure("message %ld has REJECTME but got '%c'", c->msg_no, code);
    } else if (!is_accept || c->xbench_count != 1 || !c->xbench_ok || c->other_mods) {
      report_failure("message %ld: final '%c', %d X-Bench header(s), value %s, %d other change(s)",
                     c->msg_no, code, c->xbench_count, c->xbench_ok ? "right" : "wrong",
                     c->other_mods);
    }
  } else if (!is_accept || c->xbench_count || c->other_mods) {
    report_failure("no-op job: message %ld got '%c' with %d change(s)", c->msg_no, code,
                   c->xbench_count + c->other_mods);
  }
}

/* ---- replies ---- */
static int is_final(int code) {
  return code == 'c' || code == 'a' || code == 'r' || code == 't' || code == 'd' || code == 'y';
}

static void check_addheader(conn *c, const uint8_t *payload, size_t len) {
  const char *name = (const char *)payload;
  size_t nlen = strnlen(name, len);
  if (nlen >= len) {
    c->other_mods++;
    return;
  }
  const char *value = name + nlen + 1;
  size_t vlen = strnlen(value, len - nlen - 1);
  if (nlen + 1 + vlen + 1 != len || strcasecmp(name, opt.expect_name ? opt.expect_name : "X-Bench") != 0) {
    c->other_mods++;
    return;
  }
  while (vlen > 0 && (*value == ' ' || *value == '\t')) value++, vlen--;
  char expected[512];
  if (opt.expect_value) snprintf(expected, sizeof expected, "%s", opt.expect_value);
  else snprintf(expected, sizeof expected, "%zu", opt.body_len);
  c->xbench_count++;
  c->xbench_ok = strlen(expected) == vlen && memcmp(expected, value, vlen) == 0;
}

/* Handles one packet from the milter; returns -1 when the connection must be dropped. */
static int on_reply(conn *c, int code, const uint8_t *payload, size_t len) {
  replies[code & 0xff]++;
  if (!c->awaiting) {
    count_error("reply while none was expected");
    return -1;
  }
  if (code == 'p') return 0;
  if (c->awaiting == 'O') {
    if (code != 'O' || len < 12) {
      count_error("bad OPTNEG reply");
      return -1;
    }
    uint32_t word[3];
    memcpy(word, payload, 12);
    c->proto = ntohl(word[2]);
    c->awaiting = 0;
    return 0;
  }
  if (c->awaiting == 'E' && !is_final(code)) {
    if (code == 'h') check_addheader(c, payload, len);
    else c->other_mods++;
    return 0;
  }
  if (c->awaiting == 'C' || c->awaiting == 'H') {
    if (code != 'c') {
      count_error("the milter ended filtering at CONNECT/HELO");
      return -1;
    }
    c->awaiting = 0;
    return 0;
  }
  if (c->awaiting == 'B' && code == 's') {
    c->awaiting = 0;
    c->step = S_EOB;
    return 0;
  }
  if (!is_final(code)) {
    count_error("unexpected reply code before end of message");
    return -1;
  }
  c->awaiting = 0;
  if (code != 'c' || c->step == S_END) {
    c->final_code = code;
    c->step = S_END;
  }
  return 0;
}

static void on_readable(conn *c) {
  for (;;) {
    if (c->incap - c->inlen < 4096) {
      c->incap = c->incap ? c->incap * 2 : 8192;
      c->in = xrealloc(c->in, c->incap);
    }
    size_t room = c->incap - c->inlen;
    ssize_t r = read(c->fd, c->in + c->inlen, room);
    if (r < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      r = 0;
    }
    if (r == 0) {
      if (c->step == S_IDLE && !c->awaiting) idle_dropped++;
      else count_error("connection closed by the milter");
      replace_conn(c);
      return;
    }
    c->inlen += (size_t)r;
    if ((size_t)r < room) break;
  }
  size_t pos = 0;
  while (c->inlen - pos >= 5) {
    uint32_t len;
    memcpy(&len, c->in + pos, 4);
    len = ntohl(len);
    if (len == 0 || len > MAX_PACKET) {
      count_error("malformed packet length from the milter");
      close_conn(c);
      return;
    }
    if (c->inlen - pos < 4 + (size_t)len) break;
    if (on_reply(c, c->in[pos + 4], c->in + pos + 5, len - 1) < 0) {
      replace_conn(c);
      return;
    }
    pos += 4 + len;
  }
  memmove(c->in, c->in + pos, c->inlen - pos);
  c->inlen -= pos;
  if (!c->awaiting) advance(c);
}

/* ---- connections ---- */
static void close_conn(conn *c) {
  if (c->fd >= 0) {
    close(c->fd);
    active--;
  }
  c->fd = -1;
  c->dead = 1;
}

static void defer_connect(conn *c) {
  if (npending == pendingcap) {
    pendingcap = pendingcap ? pendingcap * 2 : 64;
    pending_connect = xrealloc(pending_connect, pendingcap * sizeof(conn *));
  }
  pending_connect[npending++] = c;
}

static void start_session(conn *c) {
  c->connecting = 0;
  c->step = S_OPTNEG;
  advance(c);
}

static void open_conn(conn *c) {
  c->dead = 0;
  c->awaiting = 0;
  c->proto = 0;
  c->nsegs = c->seghead = c->headoff = c->arenalen = 0;
  c->inlen = 0;
  c->want_out = 0;
  if (opt.per_message) c->t_start = now_ns();
  int fd = socket(target.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) die("socket: %s", strerror(errno));
  c->fd = fd;
  active++;
  opened++;
  struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT, .data.ptr = c };
  if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0) die("epoll_ctl add: %s", strerror(errno));
  if (connect(fd, (struct sockaddr *)&target, target_len) == 0) {
    ev.events = EPOLLIN;
    epoll_ctl(epfd, EPOLL_CTL_MOD, fd, &ev);
    start_session(c);
    return;
  }
  if (errno == EINPROGRESS) {
    c->connecting = 1;
    c->want_out = 1;
    return;
  }
  if (errno == EAGAIN) { /* unix socket backlog full: try again shortly */
    close_conn(c);
    defer_connect(c);
    return;
  }
  die("connect to %s: %s", opt.socket_spec, strerror(errno));
}

static void on_event(conn *c, uint32_t events) {
  if (c->dead) return;
  if (c->connecting) {
    int err = 0;
    socklen_t elen = sizeof err;
    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &elen);
    if (err) die("connect to %s: %s", opt.socket_spec, strerror(err));
    update_events(c, 0);
    start_session(c);
    return;
  }
  if (events & EPOLLOUT) {
    if (flush(c) < 0) {
      count_error("write failed: connection closed by the milter");
      replace_conn(c);
      return;
    }
  }
  if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) on_readable(c);
}

static void parse_socket(const char *spec) {
  memset(&target, 0, sizeof target);
  if (strncmp(spec, "unix:", 5) == 0) {
    struct sockaddr_un *un = (struct sockaddr_un *)&target;
    un->sun_family = AF_UNIX;
    if (strlen(spec + 5) >= sizeof un->sun_path) die("socket path too long: %s", spec);
    strcpy(un->sun_path, spec + 5);
    target_len = sizeof *un;
    return;
  }
  if (strncmp(spec, "inet:", 5) == 0) { /* inet:PORT@127.0.0.1 (Sendmail's form) */
    struct sockaddr_in *in = (struct sockaddr_in *)&target;
    const char *at = strchr(spec + 5, '@');
    in->sin_family = AF_INET;
    in->sin_port = htons((uint16_t)atoi(spec + 5));
    if (inet_pton(AF_INET, at ? at + 1 : "127.0.0.1", &in->sin_addr) != 1) die("bad address in %s", spec);
    target_len = sizeof *in;
    return;
  }
  die("socket must be unix:/path or inet:PORT@127.0.0.1, got %s", spec);
}

static void raise_fd_limit(int need) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return;
  if (rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  if ((long)rl.rlim_cur < need + 16)
    die("need %d file descriptors, the limit is %ld", need + 16, (long)rl.rlim_cur);
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

static double percentile_ms(double q) {
  if (nlat == 0) return 0;
  size_t i = (size_t)(q * (double)(nlat - 1) + 0.5);
  return (double)latencies[i] / 1e6;
}

static double cpu_seconds(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
         ru.ru_stime.tv_usec / 1e6;
}

static void usage_to(FILE *out) {
  fprintf(out,
          "usage: loadgen --socket unix:/path|inet:PORT@127.0.0.1 [--conns N] [--body BYTES]\n"
          "               (--duration SECONDS | --messages COUNT) [--per-message]\n"
          "               [--check noop|work] [--reject-every K] [--chunk BYTES]\n"
          "               [--expect-header NAME:VALUE]  (every message accepted with this header added)\n"
          "       loadgen --socket SPEC --idle N [--hold SECONDS]\n");
}

static void usage(void) {
  usage_to(stderr);
  exit(2);
}

static void run_loop(void) {
  struct epoll_event evs[256];
  for (;;) {
    if (npending > 0 && stop_issuing()) npending = 0;
    if (npending > 0) {
      size_t n = npending;
      conn **list = xrealloc(NULL, n * sizeof(conn *));
      memcpy(list, pending_connect, n * sizeof(conn *));
      npending = 0;
      for (size_t i = 0; i < n; i++) open_conn(list[i]);
      free(list);
    }
    if (active == 0 && npending == 0) return;
    uint64_t t = now_ns();
    if (t >= t_hard_deadline) {
      count_error("run did not finish in time (stalled milter?)");
      return;
    }
    int timeout = npending > 0 ? 1 : 100;
    int n = epoll_wait(epfd, evs, 256, timeout);
    if (n < 0 && errno != EINTR) die("epoll_wait: %s", strerror(errno));
    for (int i = 0; i < n; i++) {
      if (evs[i].data.ptr == NULL) return; /* stdin: idle hold is over */
      on_event(evs[i].data.ptr, evs[i].events);
    }
  }
}

static void run_idle(conn *conns) {
  /* Connect in waves so the milter's accept backlog is never the limit. */
  const int wave = 256;
  uint64_t t0 = now_ns();
  int started = 0;
  while (started < opt.idle) {
    int upto = started + wave < opt.idle ? started + wave : opt.idle;
    for (; started < upto; started++) open_conn(&conns[started]);
    while (idle_established + idle_dropped + errors < upto) {
      struct epoll_event evs[256];
      if (now_ns() >= t_hard_deadline) die("idle connections not established in time");
      int n = epoll_wait(epfd, evs, 256, 100);
      for (int i = 0; i < n; i++) on_event(evs[i].data.ptr, evs[i].events);
      if (npending > 0) {
        size_t np = npending;
        npending = 0;
        for (size_t i = 0; i < np; i++) open_conn(pending_connect[i]);
      }
    }
  }
  double connect_s = (double)(now_ns() - t0) / 1e9;
  printf("READY %ld\n", idle_established);
  fflush(stdout);
  idle_ready_printed = 1;
  /* Hold until stdin closes or the hold time passes; watch for connections the milter drops. */
  struct epoll_event sev = { .events = EPOLLIN, .data.ptr = NULL };
  epoll_ctl(epfd, EPOLL_CTL_ADD, 0, &sev);
  uint64_t hold_until = opt.hold > 0 ? now_ns() + (uint64_t)(opt.hold * 1e9) : UINT64_MAX;
  for (;;) {
    struct epoll_event evs[256];
    if (now_ns() >= hold_until) break;
    int n = epoll_wait(epfd, evs, 256, 100);
    int done = 0;
    for (int i = 0; i < n; i++) {
      if (evs[i].data.ptr == NULL) done = 1;
      else on_event(evs[i].data.ptr, evs[i].events);
    }
    if (done) break;
  }
  long open_at_end = 0;
  for (int i = 0; i < opt.idle; i++) {
    conn *c = &conns[i];
    if (c->dead) continue;
    open_at_end++;
    packet_empty(c, 'Q');
    flush(c);
    close_conn(c);
  }
  printf("{\"mode\":\"idle\",\"requested\":%d,\"established\":%ld,\"open_at_end\":%ld,"
         "\"dropped\":%ld,\"errors\":%ld,\"connect_s\":%.3f,\"loadgen_cpu_s\":%.3f}\n",
         opt.idle, idle_established, open_at_end, idle_dropped, errors, connect_s, cpu_seconds());
}

int main(int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      usage_to(stdout);
      return 0;
    }
    if (!strcmp(a, "--per-message")) { opt.per_message = 1; continue; }
    if (!v) usage();
    if (!strcmp(a, "--socket")) opt.socket_spec = v;
    else if (!strcmp(a, "--conns")) opt.conns = atoi(v);
    else if (!strcmp(a, "--body")) opt.body_len = (size_t)atol(v);
    else if (!strcmp(a, "--duration")) opt.duration = atof(v);
    else if (!strcmp(a, "--messages")) opt.messages = atol(v);
    else if (!strcmp(a, "--check")) opt.check_work = !strcmp(v, "work");
    else if (!strcmp(a, "--expect-header")) {
      char *spec = argv[i + 1];
      char *colon = strchr(spec, ':');
      if (!colon) usage();
      *colon = '\0';
      opt.expect_name = spec;
      opt.expect_value = colon + 1;
    }
    else if (!strcmp(a, "--reject-every")) opt.reject_every = atoi(v);
    else if (!strcmp(a, "--idle")) opt.idle = atoi(v);
    else if (!strcmp(a, "--hold")) opt.hold = atof(v);
    else if (!strcmp(a, "--chunk")) opt.chunk = (size_t)atol(v);
    else usage();
    i++;
  }
  if (!opt.socket_spec || opt.conns < 1 || opt.chunk < 1 || opt.chunk > MILTER_CHUNK) usage();
  if (!opt.idle && opt.duration <= 0 && opt.messages <= 0) usage();
  signal(SIGPIPE, SIG_IGN);
  parse_socket(opt.socket_spec);
  int nconns = opt.idle ? opt.idle : opt.conns;
  raise_fd_limit(nconns);

  /* The body: text lines with CRLF, as Postfix sends it, cut to exactly body_len bytes. */
  body = xrealloc(NULL, opt.body_len + 1);
  static const char line[] = "The quick brown fox jumps over the lazy dog while the milter counts "
                             "bytes.\r\n";
  for (size_t i = 0; i < opt.body_len; i++) body[i] = (uint8_t)line[i % (sizeof line - 1)];

  epfd = epoll_create1(EPOLL_CLOEXEC);
  if (epfd < 0) die("epoll_create1: %s", strerror(errno));
  conn *conns = calloc((size_t)nconns, sizeof(conn));
  if (!conns) die("out of memory");
  for (int i = 0; i < nconns; i++) conns[i].fd = -1;

  all_conns = conns;
  start_clock();
  double budget = opt.duration > 0 ? opt.duration + 60 : 600;
  if (opt.idle) budget = 600;
  t_hard_deadline = t_begin + (uint64_t)(budget * 1e9);

  if (opt.idle) {
    run_idle(conns);
    return errors ? 1 : 0;
  }
  for (int i = 0; i < nconns; i++) open_conn(&conns[i]);
  run_loop();
  uint64_t t_end = t_last_done ? t_last_done : now_ns();
  double elapsed = (double)(t_end - t_begin) / 1e9;
  qsort(latencies, nlat, sizeof(uint64_t), cmp_u64);
  printf("{\"mode\":\"%s\",\"conns\":%d,\"body\":%zu,\"messages\":%ld,\"elapsed_s\":%.4f,"
         "\"msgs_per_s\":%.1f,\"p50_ms\":%.3f,\"p99_ms\":%.3f,\"max_ms\":%.3f,\"accepted\":%ld,"
         "\"rejected\":%ld,\"check_failures\":%ld,\"errors\":%ld,\"connections\":%ld,"
         "\"loadgen_cpu_s\":%.3f,\"replies\":{",
         opt.per_message ? "per-message" : "reuse", opt.conns, opt.body_len, messages_done,
         elapsed, elapsed > 0 ? (double)messages_done / elapsed : 0.0, percentile_ms(0.5),
         percentile_ms(0.99), percentile_ms(1.0), accepted, rejected, check_failures, errors,
         opened, cpu_seconds());
  int first = 1;
  for (int code = 33; code < 127; code++) {
    if (!replies[code] || code == '"' || code == '\\') continue;
    printf("%s\"%c\":%ld", first ? "" : ",", code, replies[code]);
    first = 0;
  }
  printf("}}\n");
  return errors || check_failures ? 1 : 0;
}
