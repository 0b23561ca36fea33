/*
 * The C libmilter reference peer of the benchmark (Debian's libmilter-dev).
 *
 *   libmilter-peer noop|work SOCKET
 *
 * SOCKET is in libmilter's syntax: unix:/path or inet:PORT@127.0.0.1.
 * Both jobs register every callback, so the MTA sends every step to each peer alike.
 *   noop: every callback continues.
 *   work: at end of message, add "X-Bench: <body bytes>", or reject the message when its
 *         Subject contains REJECTME.
 */
#include <libmilter/mfapi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef struct {
  unsigned long body_bytes;
  int reject;
} message_state;

static int work_job;

static message_state *state_of(SMFICTX *ctx) {
  message_state *s = smfi_getpriv(ctx);
  if (s == NULL) {
    s = calloc(1, sizeof *s);
    smfi_setpriv(ctx, s);
  }
  return s;
}

static void reset_message(SMFICTX *ctx) {
  message_state *s = smfi_getpriv(ctx);
  if (s != NULL) memset(s, 0, sizeof *s);
}

static sfsistat on_connect(SMFICTX *ctx, char *host, _SOCK_ADDR *addr) {
  (void)ctx; (void)host; (void)addr;
  return SMFIS_CONTINUE;
}
static sfsistat on_helo(SMFICTX *ctx, char *name) {
  (void)ctx; (void)name;
  return SMFIS_CONTINUE;
}
static sfsistat on_envfrom(SMFICTX *ctx, char **argv) {
  (void)argv;
  if (work_job) {
    state_of(ctx);
    reset_message(ctx);
  }
  return SMFIS_CONTINUE;
}
static sfsistat on_envrcpt(SMFICTX *ctx, char **argv) {
  (void)ctx; (void)argv;
  return SMFIS_CONTINUE;
}
static sfsistat on_data(SMFICTX *ctx) {
  (void)ctx;
  return SMFIS_CONTINUE;
}
static sfsistat on_header(SMFICTX *ctx, char *name, char *value) {
  if (work_job && strcasecmp(name, "Subject") == 0 && strstr(value, "REJECTME") != NULL)
    state_of(ctx)->reject = 1;
  return SMFIS_CONTINUE;
}
static sfsistat on_eoh(SMFICTX *ctx) {
  (void)ctx;
  return SMFIS_CONTINUE;
}
static sfsistat on_body(SMFICTX *ctx, unsigned char *chunk, size_t len) {
  (void)chunk;
  if (work_job) state_of(ctx)->body_bytes += len;
  return SMFIS_CONTINUE;
}
static sfsistat on_eom(SMFICTX *ctx) {
  if (!work_job) return SMFIS_CONTINUE;
  message_state *s = state_of(ctx);
  int reject = s->reject;
  char value[32];
  snprintf(value, sizeof value, "%lu", s->body_bytes);
  reset_message(ctx);
  if (reject) return SMFIS_REJECT;
  if (smfi_addheader(ctx, "X-Bench", value) != MI_SUCCESS) return SMFIS_TEMPFAIL;
  return SMFIS_CONTINUE;
}
static sfsistat on_abort(SMFICTX *ctx) {
  reset_message(ctx);
  return SMFIS_CONTINUE;
}
static sfsistat on_close(SMFICTX *ctx) {
  free(smfi_getpriv(ctx));
  smfi_setpriv(ctx, NULL);
  return SMFIS_CONTINUE;
}
static sfsistat on_unknown(SMFICTX *ctx, const char *command) {
  (void)ctx; (void)command;
  return SMFIS_CONTINUE;
}

int main(int argc, char **argv) {
  if (argc != 3 || (strcmp(argv[1], "noop") != 0 && strcmp(argv[1], "work") != 0)) {
    fprintf(stderr, "usage: %s noop|work unix:/path|inet:PORT@127.0.0.1\n", argv[0]);
    return 2;
  }
  work_job = strcmp(argv[1], "work") == 0;
  struct smfiDesc desc = {
    .xxfi_name = "bench-libmilter",
    .xxfi_version = SMFI_VERSION,
    .xxfi_flags = work_job ? SMFIF_ADDHDRS : 0,
    .xxfi_connect = on_connect,
    .xxfi_helo = on_helo,
    .xxfi_envfrom = on_envfrom,
    .xxfi_envrcpt = on_envrcpt,
    .xxfi_header = on_header,
    .xxfi_eoh = on_eoh,
    .xxfi_body = on_body,
    .xxfi_eom = on_eom,
    .xxfi_abort = on_abort,
    .xxfi_close = on_close,
    .xxfi_unknown = on_unknown,
    .xxfi_data = on_data,
    .xxfi_negotiate = NULL,
  };
  if (smfi_setconn(argv[2]) != MI_SUCCESS || smfi_setbacklog(1024) != MI_SUCCESS ||
      smfi_register(desc) != MI_SUCCESS || smfi_opensocket(1) != MI_SUCCESS) {
    fprintf(stderr, "libmilter-peer: cannot listen on %s\n", argv[2]);
    return 1;
  }
  return smfi_main() == MI_SUCCESS ? 0 : 1;
}
