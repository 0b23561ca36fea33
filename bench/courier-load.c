/*
 * courier-load: a load generator that plays Courier's submit against a global filter.
 *
 * For every request, as submit does after the end of DATA: connect to the filter's unix socket,
 * write the data file's path, the control files' paths (one per line) and an empty line, then
 * read the reply until the filter closes the connection. Many requests run at once (--conns),
 * each connection carrying one request, from one process with one epoll loop, so that it is never
 * the bottleneck (its own CPU time is reported).
 *
 * The requests come from a manifest written by the benchmark, one per line:
 *   SLOT KIND EXPECT KEYWORD DATA-PATH CONTROL-PATH...
 * SLOT: connection slot whose files these are (connection i uses slot i % slots, cycling through
 * that slot's lines); EXPECT: the first digit every reply must start with (2 accept, 5 reject);
 * KEYWORD: a word a rejection must contain (case-insensitive; "-" for none). A reply that differs
 * is a check failure, reported on stderr and counted.
 *
 * Output: one JSON object on stdout (requests/s, latency percentiles from connect to the
 * filter's close, counts, its own CPU seconds, the first reply of every kind).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define MAX_REPLY 4096
#define MAX_KINDS 32
#define MAX_LINE 8192

typedef struct {
  int slot;
  int kind;           /* index into kinds[] */
  char expect;        /* first digit of the reply */
  char keyword[64];   /* "" when none */
  char *request;      /* the paths, newline-terminated, then an empty line */
  size_t request_len;
} entry;

typedef struct {
  int fd;
  int slot;
  size_t next;        /* position in the slot's list */
  entry *current;
  size_t sent;
  char reply[MAX_REPLY];
  size_t reply_len;
  uint64_t t_start;
} conn;

static entry *entries;
static size_t nentries;
static size_t **slot_lists;  /* per slot: indexes into entries */
static size_t *slot_counts;
static int nslots;
static char *kinds[MAX_KINDS];
static char *first_reply[MAX_KINDS];
static int nkinds;

static struct sockaddr_un target;
static int epfd;
static int conns_wanted = 1;
static double duration;
static long max_requests;
static long issued, done, accepted, rejected, check_failures, errors, reported;
static uint64_t *latencies;
static size_t nlat, latcap;
static uint64_t t_begin, t_deadline;

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void die(const char *fmt, const char *arg) {
  fprintf(stderr, "courier-load: ");
  fprintf(stderr, fmt, arg);
  fputc('\n', stderr);
  exit(2);
}

static void *xrealloc(void *p, size_t n) {
  void *q = realloc(p, n);
  if (!q) die("%s", "out of memory");
  return q;
}

static int kind_index(const char *name) {
  for (int i = 0; i < nkinds; i++)
    if (!strcmp(kinds[i], name)) return i;
  if (nkinds == MAX_KINDS) die("%s", "too many request kinds");
  kinds[nkinds] = strdup(name);
  return nkinds++;
}

static void read_manifest(const char *path) {
  FILE *f = fopen(path, "r");
  if (!f) die("cannot open the manifest %s", path);
  char line[MAX_LINE];
  while (fgets(line, sizeof line, f)) {
    char *save = NULL;
    char *slot = strtok_r(line, " \t\n", &save);
    char *kind = strtok_r(NULL, " \t\n", &save);
    char *expect = strtok_r(NULL, " \t\n", &save);
    char *keyword = strtok_r(NULL, " \t\n", &save);
    if (!slot || !kind || !expect || !keyword) continue;
    entries = xrealloc(entries, (nentries + 1) * sizeof(entry));
    entry *e = &entries[nentries];
    memset(e, 0, sizeof *e);
    e->slot = atoi(slot);
    e->kind = kind_index(kind);
    e->expect = expect[0];
    if (strcmp(keyword, "-") != 0) snprintf(e->keyword, sizeof e->keyword, "%s", keyword);
    size_t cap = 0;
    for (char *p; (p = strtok_r(NULL, " \t\n", &save)) != NULL;) {
      size_t n = strlen(p);
      e->request = xrealloc(e->request, cap + n + 2);
      memcpy(e->request + cap, p, n);
      e->request[cap + n] = '\n';
      cap += n + 1;
    }
    if (cap == 0) die("a manifest line has no paths: %s", path);
    e->request[cap++] = '\n';
    e->request_len = cap;
    if (e->slot + 1 > nslots) nslots = e->slot + 1;
    nentries++;
  }
  fclose(f);
  if (nentries == 0) die("empty manifest %s", path);
  slot_lists = calloc((size_t)nslots, sizeof(size_t *));
  slot_counts = calloc((size_t)nslots, sizeof(size_t));
  for (size_t i = 0; i < nentries; i++) {
    int s = entries[i].slot;
    slot_lists[s] = xrealloc(slot_lists[s], (slot_counts[s] + 1) * sizeof(size_t));
    slot_lists[s][slot_counts[s]++] = i;
  }
  for (int s = 0; s < nslots; s++)
    if (slot_counts[s] == 0) die("%s: every slot from 0 up needs requests", path);
}

static int stop_issuing(void) {
  if (max_requests > 0) return issued >= max_requests;
  return now_ns() >= t_deadline;
}

static void fail(const entry *e, const char *reply) {
  check_failures++;
  if (reported++ < 5)
    fprintf(stderr, "courier-load: check failed: %s expects %c%s%s, got: %.200s\n", kinds[e->kind], e->expect,
            e->keyword[0] ? " with " : "", e->keyword, reply);
}

static void check_reply(conn *c) {
  const entry *e = c->current;
  c->reply[c->reply_len] = '\0';
  if (!first_reply[e->kind]) first_reply[e->kind] = strndup(c->reply, 300);
  char code = c->reply_len > 0 ? c->reply[0] : '?';
  if (code == '2') accepted++;
  if (code == '5') rejected++;
  if (code != e->expect || c->reply_len < 4 || c->reply[c->reply_len - 1] != '\n' ||
      (e->keyword[0] && !strcasestr(c->reply, e->keyword)))
    fail(e, c->reply_len ? c->reply : "(nothing)");
}

static void start_request(conn *c);

static void finish(conn *c, int ok) {
  epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
  close(c->fd);
  c->fd = -1;
  if (ok) {
    uint64_t t = now_ns();
    if (nlat == latcap) {
      latcap = latcap ? latcap * 2 : 65536;
      latencies = xrealloc(latencies, latcap * sizeof(uint64_t));
    }
    latencies[nlat++] = t - c->t_start;
    done++;
    check_reply(c);
  }
  if (!stop_issuing()) start_request(c);
}

static void count_error(conn *c, const char *what) {
  errors++;
  if (errors <= 5) fprintf(stderr, "courier-load: %s: %s\n", what, strerror(errno));
  if (errors > 1000) die("%s", "too many errors, giving up");
  finish(c, 0);
}

static void start_request(conn *c) {
  size_t *list = slot_lists[c->slot];
  c->current = &entries[list[c->next++ % slot_counts[c->slot]]];
  c->sent = 0;
  c->reply_len = 0;
  c->t_start = now_ns();
  issued++;
  c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (c->fd < 0) die("socket: %s", strerror(errno));
  struct epoll_event ev = { .events = EPOLLOUT, .data.ptr = c };
  if (epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev) < 0) die("epoll_ctl: %s", strerror(errno));
  if (connect(c->fd, (struct sockaddr *)&target, sizeof target) < 0 && errno != EINPROGRESS) {
    if (errno == EAGAIN) {  /* the listen backlog is full: submit retries too */
      epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
      close(c->fd);
      c->fd = -1;
      issued--;
      usleep(1000);
      start_request(c);
      return;
    }
    count_error(c, "connect");
  }
}

static void on_event(conn *c, uint32_t events) {
  if (c->sent < c->current->request_len) {
    if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) return;
    ssize_t n = write(c->fd, c->current->request + c->sent, c->current->request_len - c->sent);
    if (n < 0) {
      if (errno == EAGAIN) return;
      count_error(c, "write");
      return;
    }
    c->sent += (size_t)n;
    if (c->sent == c->current->request_len) {
      struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };
      epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
    }
    return;
  }
  for (;;) {
    if (c->reply_len == MAX_REPLY - 1) {
      errno = EMSGSIZE;
      count_error(c, "reply too long");
      return;
    }
    ssize_t n = read(c->fd, c->reply + c->reply_len, MAX_REPLY - 1 - c->reply_len);
    if (n < 0) {
      if (errno == EAGAIN) return;
      count_error(c, "read");
      return;
    }
    if (n == 0) {
      finish(c, 1);
      return;
    }
    c->reply_len += (size_t)n;
  }
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

static double percentile_ms(double q) {
  if (nlat == 0) return 0;
  return (double)latencies[(size_t)(q * (double)(nlat - 1) + 0.5)] / 1e6;
}

static void print_json_string(const char *s) {
  putchar('"');
  for (; *s; s++) {
    unsigned char ch = (unsigned char)*s;
    if (ch == '"' || ch == '\\') printf("\\%c", ch);
    else if (ch == '\n') fputs("\\n", stdout);
    else if (ch < 0x20) printf("\\u%04x", ch);
    else putchar(ch);
  }
  putchar('"');
}

static void usage(void) {
  fputs("usage: courier-load --socket PATH --manifest FILE [--conns N] (--duration SECONDS | --requests N)\n", stderr);
  exit(2);
}

int main(int argc, char **argv) {
  const char *socket_path = NULL, *manifest = NULL;
  for (int i = 1; i + 1 < argc; i += 2) {
    const char *a = argv[i], *v = argv[i + 1];
    if (!strcmp(a, "--socket")) socket_path = v;
    else if (!strcmp(a, "--manifest")) manifest = v;
    else if (!strcmp(a, "--conns")) conns_wanted = atoi(v);
    else if (!strcmp(a, "--duration")) duration = atof(v);
    else if (!strcmp(a, "--requests")) max_requests = atol(v);
    else usage();
  }
  if (argc % 2 != 1 || !socket_path || !manifest || conns_wanted < 1 || (duration <= 0 && max_requests <= 0)) usage();
  if (strlen(socket_path) >= sizeof target.sun_path) die("socket path too long: %s", socket_path);
  target.sun_family = AF_UNIX;
  strcpy(target.sun_path, socket_path);
  read_manifest(manifest);
  epfd = epoll_create1(EPOLL_CLOEXEC);
  conn *conns = calloc((size_t)conns_wanted, sizeof(conn));
  t_begin = now_ns();
  t_deadline = t_begin + (uint64_t)(duration * 1e9);
  int started = 0;
  for (int i = 0; i < conns_wanted && !stop_issuing(); i++, started++) {
    conns[i].slot = i % nslots;
    conns[i].fd = -1;
    start_request(&conns[i]);
  }
  struct epoll_event evs[256];
  for (;;) {
    int active = 0;
    for (int i = 0; i < started; i++) active += conns[i].fd >= 0;
    if (!active) break;
    int n = epoll_wait(epfd, evs, 256, 1000);
    if (n < 0 && errno != EINTR) die("epoll_wait: %s", strerror(errno));
    for (int i = 0; i < n; i++) on_event(evs[i].data.ptr, evs[i].events);
  }
  double elapsed = (double)(now_ns() - t_begin) / 1e9;
  qsort(latencies, nlat, sizeof(uint64_t), cmp_u64);
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  double cpu = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
  printf("{\"requests\":%ld,\"elapsed_s\":%.6f,\"requests_per_s\":%.1f,\"p50_ms\":%.3f,\"p99_ms\":%.3f,"
         "\"max_ms\":%.3f,\"accepted\":%ld,\"rejected\":%ld,\"check_failures\":%ld,\"errors\":%ld,"
         "\"loadgen_cpu_s\":%.6f,\"first_replies\":{",
         done, elapsed, done / elapsed, percentile_ms(0.5), percentile_ms(0.99), percentile_ms(1.0), accepted,
         rejected, check_failures, errors, cpu);
  for (int k = 0; k < nkinds; k++) {
    if (k) putchar(',');
    print_json_string(kinds[k]);
    putchar(':');
    print_json_string(first_reply[k] ? first_reply[k] : "");
  }
  printf("}}\n");
  return errors || check_failures ? 1 : 0;
}
