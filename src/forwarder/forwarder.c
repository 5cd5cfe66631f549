/* kube-ipam's CNI entry point: what the runtime runs as /opt/cni/bin/kube-ipam (layout.ts says why it is
 * native). For a CNI request the node agent can serve, it sends the request over the agent's socket
 * (src/agent/protocol.ts) and prints the answer. In every other case it replaces itself with the core,
 * kube-ipam-core next to it, which then runs exactly as if the runtime had started it: the CLI, VERSION, a
 * config that names no agent or a relative path, and every way the agent can fail to serve (no socket,
 * refused, silent, another build, dead before answering). Nothing here judges a config: whoever runs the
 * request, the core's code does; this file only reads enough to know where to send it.
 *
 * Compiled by scripts/build.sh with a generated header of the protocol's constants (forwarder_config.h). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "forwarder_config.h"
#include "json.h"

static const char *const forwarded_env[] = FORWARDED_ENV_LIST;
static const char *const forwarded_verbs[] = FORWARDED_VERB_LIST;
static const char *const path_fields[] = PATH_FIELD_LIST;
static const char *const etcd_path_fields[] = ETCD_PATH_FIELD_LIST;
#define PATH_FIELD_COUNT (sizeof path_fields / sizeof *path_fields - 1)
#define ETCD_PATH_FIELD_COUNT (sizeof etcd_path_fields / sizeof *etcd_path_fields - 1)

/* An answer is a network config result or an error: kilobytes. More is not the protocol. */
#define MAX_REPLY_BYTES (16 * 1024 * 1024)

/* Epoch milliseconds, as the agent's Date.now() reads them. */
static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int in_list(const char *const *list, const char *s) {
  for (; *list; list++)
    if (strcmp(*list, s) == 0) return 1;
  return 0;
}

static int index_in(const char *const *list, const struct buf *key) {
  for (int i = 0; list[i]; i++)
    if (json_key_is(key, list[i])) return i;
  return -1;
}

#ifdef KUBE_IPAM_FAILPOINTS
/* src/lib/failpoint.ts, for this process's one point. Compiled only into a FAILPOINTS=1 build. */
static void failpoint(const char *name) {
  const char *specs = getenv("KUBE_IPAM_FAILPOINTS");
  if (!specs) return;
  size_t n = strlen(name);
  for (const char *s = specs; *s;) {
    size_t len = strcspn(s, ",");
    if (len == n && memcmp(s, name, n) == 0) kill(getpid(), SIGKILL);
    if (len > n + 7 && memcmp(s, name, n) == 0 && memcmp(s + n, "=sleep:", 7) == 0) {
      long ms = strtol(s + n + 7, NULL, 10);
      struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
      if (ms > 0) nanosleep(&ts, NULL);
    }
    s += len;
    if (*s == ',') s++;
  }
}
#else
#define failpoint(name) ((void)0)
#endif

/* ---- the core ---------------------------------------------------------------------------------------- */

/* Makes `bytes` the process's stdin, for the core to read as it would the runtime's. */
static int stdin_from(const struct buf *bytes) {
  int fd = memfd_create("kube-ipam-stdin", 0);
  if (fd >= 0) {
    for (size_t off = 0; off < bytes->len;) {
      ssize_t n = write(fd, bytes->p + off, bytes->len - off);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return close(fd), -1;
      off += (size_t)n;
    }
    if (lseek(fd, 0, SEEK_SET) != 0) return close(fd), -1;
  } else {
    /* No memfd (an old kernel, a seccomp profile): a pipe big enough to hold it all. */
    int p[2];
    if (pipe2(p, O_CLOEXEC)) return -1;
    if (bytes->len > 65536) fcntl(p[1], F_SETPIPE_SZ, (int)bytes->len);
    fcntl(p[1], F_SETFL, O_NONBLOCK);
    ssize_t n = bytes->len ? write(p[1], bytes->p, bytes->len) : 0;
    close(p[1]);
    if (n != (ssize_t)bytes->len) return close(p[0]), -1;
    fd = p[0];
  }
  if (dup2(fd, 0) < 0) return close(fd), -1;
  close(fd);
  return 0;
}

/* Prints what a runtime or a user is told when the core cannot be run, and exits. */
_Noreturn static void cannot_run_core(const char *core, const char *why) {
  struct buf msg = {0};
  buf_printf(&msg, "kube-ipam cannot run its core \"%s\": %s (it is installed next to kube-ipam, from the same build)", core, why);
  struct buf out = {0};
  if (getenv("CNI_COMMAND")) {
    buf_puts(&out, "{\"cniVersion\":\"1.0.0\",\"code\":999,\"msg\":");
    json_quote(&out, msg.p, utf8_valid(msg.p, msg.len) ? msg.len : 0);
    buf_puts(&out, "}\n");
    (void)!write(1, out.p, out.len);
  } else {
    buf_printf(&out, "%s\n", msg.p);
    (void)!write(2, out.p, out.len);
  }
  exit(1);
}

/* Replaces this process with the core. `stdin_bytes`: what this process read of stdin (NULL: untouched).
 * `reason`: why the agent did not serve a forwardable request (NULL: it was not tried). */
_Noreturn static void run_core(char **argv, const struct buf *stdin_bytes, const char *reason, int64_t started_at) {
  char self[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0) {
    /* No procfs: how we were started, which a runtime always gives as a path. */
    if (!argv[0] || !strchr(argv[0], '/') || !realpath(argv[0], self)) cannot_run_core(CORE_EXECUTABLE, "cannot tell where kube-ipam is installed (no /proc/self/exe)");
  } else {
    self[n] = 0;
  }
  struct buf core = {0};
  char *slash = strrchr(self, '/');
  buf_put(&core, self, slash ? (size_t)(slash - self) + 1 : 0);
  buf_puts(&core, CORE_EXECUTABLE);

  if (stdin_bytes && stdin_from(stdin_bytes)) cannot_run_core(core.p, "cannot hand it the network config (no memfd, no pipe)");
  /* Set or cleared: a value the runtime's environment happened to carry must not pass for ours. */
  char at[32];
  snprintf(at, sizeof at, "%lld", (long long)started_at);
  if (started_at) setenv(STARTED_AT_ENV, at, 1);
  else unsetenv(STARTED_AT_ENV);
  if (reason) setenv(AGENT_FALLBACK_ENV, reason, 1);
  else unsetenv(AGENT_FALLBACK_ENV);
  execv(core.p, argv);
  cannot_run_core(core.p, strerror(errno));
}

/* ---- the request ------------------------------------------------------------------------------------- */

/* Reads all of stdin, or MAX_STDIN_BYTES + 1 bytes (enough for the core to refuse it). 0: all of it; 1: too
 * much; -1: a read failed. */
static int read_stdin(struct buf *in) {
  char chunk[65536];
  for (;;) {
    size_t want = sizeof chunk;
    if (want > MAX_STDIN_BYTES + 1 - in->len) want = MAX_STDIN_BYTES + 1 - in->len;
    ssize_t n = read(0, chunk, want);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) {
      struct pollfd p = {.fd = 0, .events = POLLIN};
      poll(&p, 1, -1);
      continue;
    }
    if (n < 0) return -1;
    if (n == 0) return 0;
    buf_put(in, chunk, (size_t)n);
    if (in->len > MAX_STDIN_BYTES) return 1;
  }
}

/* The ipam object's fields that decide where a request goes; the last of duplicate keys counts, as in
 * JSON.parse. */
struct ipam_fields {
  int socket_is; /* 0 absent, 1 a string (in socket), 2 anything else */
  struct buf socket;
  double timeout_seconds; /* 0 when absent or not a number */
  int relative[PATH_FIELD_COUNT];
  int etcd_relative[ETCD_PATH_FIELD_COUNT];
};

/* Reads a path field's value: whether it is a non-empty relative path. -1 when the text is not JSON. */
static int relative_path_at(struct json *j, struct buf *tmp) {
  if (json_peek(j) != '"') return json_skip(j) ? -1 : 0;
  if (json_string(j, tmp)) return -1;
  return tmp->len > 0 && tmp->p[0] != '/';
}

static int scan_etcd(struct json *j, struct ipam_fields *f, struct buf *key, struct buf *tmp) {
  memset(f->etcd_relative, 0, sizeof f->etcd_relative);
  if (json_peek(j) != '{') return json_skip(j);
  json_object_begin(j);
  int first = 1, more;
  while ((more = json_object_next(j, &first, key)) == 1) {
    int k = index_in(etcd_path_fields, key);
    if (k < 0) {
      if (json_skip(j)) return -1;
    } else if ((f->etcd_relative[k] = relative_path_at(j, tmp)) < 0) {
      return -1;
    }
  }
  return more;
}

static int scan_ipam(struct json *j, struct ipam_fields *f, struct buf *key, struct buf *tmp) {
  f->socket_is = 0;
  f->timeout_seconds = 0;
  memset(f->relative, 0, sizeof f->relative);
  memset(f->etcd_relative, 0, sizeof f->etcd_relative);
  json_object_begin(j);
  int first = 1, more;
  while ((more = json_object_next(j, &first, key)) == 1) {
    int k = index_in(path_fields, key);
    int err = 0;
    if (k >= 0) {
      err = (f->relative[k] = relative_path_at(j, tmp)) < 0;
    } else if (json_key_is(key, "agentSocket")) {
      f->socket_is = json_peek(j) == '"' ? 1 : 2;
      err = f->socket_is == 1 ? json_string(j, &f->socket) : json_skip(j);
    } else if (json_key_is(key, "timeoutSeconds")) {
      int c = json_peek(j);
      f->timeout_seconds = 0;
      err = (c == '-' || (c >= '0' && c <= '9')) ? json_number(j, &f->timeout_seconds) : json_skip(j);
    } else if (json_key_is(key, "etcdConfig")) {
      err = scan_etcd(j, f, key, tmp);
    } else {
      err = json_skip(j);
    }
    if (err) return -1;
  }
  return more;
}

/* Where to forward a request, and the invocation's budget; 0 when the request is the core's to run. */
static int target_for(const struct buf *in, struct buf *socket, int64_t *budget_ms) {
  struct json j = {in->p, in->p + in->len};
  struct buf key = {0}, tmp = {0};
  struct ipam_fields f = {0};
  int ipam_is_object = 0;
  if (json_object_begin(&j)) return 0; /* the core words the decode error */
  int first = 1, more;
  while ((more = json_object_next(&j, &first, &key)) == 1) {
    int err;
    if (json_key_is(&key, "ipam") && json_peek(&j) == '{') {
      ipam_is_object = 1;
      err = scan_ipam(&j, &f, &key, &tmp);
    } else {
      if (json_key_is(&key, "ipam")) ipam_is_object = 0;
      err = json_skip(&j);
    }
    if (err) return 0;
  }
  if (more != 0 || json_peek(&j) != -1 || !ipam_is_object) return 0;
  if (f.socket_is == 2) return 0; /* the config's error to report */
  if (f.socket_is == 1) {
    /* "" turns forwarding off; a relative path is the config's error. */
    if (f.socket.len == 0 || f.socket.p[0] != '/' || strlen(f.socket.p) != f.socket.len) return 0;
    buf_put(socket, f.socket.p, f.socket.len);
  } else {
    buf_puts(socket, DEFAULT_AGENT_SOCKET);
  }
  for (size_t k = 0; k < PATH_FIELD_COUNT; k++)
    if (f.relative[k]) return 0;
  for (size_t k = 0; k < ETCD_PATH_FIELD_COUNT; k++)
    if (f.etcd_relative[k]) return 0;
  double t = f.timeout_seconds; /* an invalid value is the config's error, reported by whoever runs it */
  if (!(t > 0) || !isfinite(t)) t = DEFAULT_TIMEOUT_SECONDS;
  if (t > 86400) t = 86400; /* the core refuses more than 120 s; here it only must not overflow */
  *budget_ms = (int64_t)(t * 1000);
  return 1;
}

/* The request line, or 0 when it cannot be one: the protocol carries text, and bytes that are not UTF-8
 * would reach the agent as other characters than the core would read. */
static int request_line(struct buf *line, const struct buf *in, int64_t started_at, int64_t accept_by) {
  struct utsname u;
  const char *host = uname(&u) == 0 ? u.nodename : "";
  if (!utf8_valid(in->p, in->len) || !utf8_valid(host, strlen(host))) return 0;
  buf_puts(line, "{\"build\":");
  json_quote(line, KUBE_IPAM_BUILD, strlen(KUBE_IPAM_BUILD));
  buf_printf(line, ",\"startedAt\":%lld,\"acceptBy\":%lld,\"env\":{", (long long)started_at, (long long)accept_by);
  int first = 1;
  for (const char *const *k = forwarded_env; *k; k++) {
    const char *v = getenv(*k);
    if (!v) continue;
    if (!utf8_valid(v, strlen(v))) return 0;
    if (!first) buf_putc(line, ',');
    first = 0;
    json_quote(line, *k, strlen(*k));
    buf_putc(line, ':');
    json_quote(line, v, strlen(v));
  }
  buf_puts(line, "},\"stdin\":");
  json_quote(line, in->p, in->len);
  buf_puts(line, ",\"hostname\":");
  json_quote(line, host, strlen(host));
  buf_puts(line, "}\n");
  return 1;
}

/* ---- the exchange ------------------------------------------------------------------------------------ */

enum reply_kind { REPLY_INVALID, REPLY_ACCEPTED, REPLY_REFUSED, REPLY_ANSWER };

struct reply {
  enum reply_kind kind;
  struct buf text; /* why refused, or the stdout to print */
  int exit_code;
};

/* Decodes one reply line, as protocol.ts decodeReply does. */
static void decode_reply(const char *s, size_t n, struct reply *r, struct buf *key) {
  struct json j = {s, s + n};
  struct buf refused = {0};
  int accepted = 0, has_refused = 0, has_stdout = 0, has_code = 0;
  double code = -1;
  r->kind = REPLY_INVALID;
  if (json_object_begin(&j)) return;
  int first = 1, more;
  while ((more = json_object_next(&j, &first, key)) == 1) {
    int c = json_peek(&j), err;
    if (json_key_is(key, "accepted")) {
      accepted = c == 't';
      err = accepted ? json_literal(&j, "true") : json_skip(&j);
    } else if (json_key_is(key, "refused")) {
      has_refused = c == '"';
      err = has_refused ? json_string(&j, &refused) : json_skip(&j);
    } else if (json_key_is(key, "stdout")) {
      has_stdout = c == '"';
      err = has_stdout ? json_string(&j, &r->text) : json_skip(&j);
    } else if (json_key_is(key, "exitCode")) {
      has_code = c == '-' || (c >= '0' && c <= '9');
      err = has_code ? json_number(&j, &code) : json_skip(&j);
    } else {
      err = json_skip(&j);
    }
    if (err) return;
  }
  if (more != 0 || json_peek(&j) != -1) return;
  if (accepted) {
    r->kind = REPLY_ACCEPTED;
  } else if (has_refused) {
    r->kind = REPLY_REFUSED;
    r->text.len = 0;
    buf_put(&r->text, refused.p, refused.len);
  } else if (has_stdout && has_code && (code == 0 || code == 1)) {
    r->kind = REPLY_ANSWER;
    r->exit_code = (int)code;
  }
  free(refused.p);
}

/* Waits for `events` on fd until `deadline` (epoch ms). 1: ready; 0: the deadline passed. */
static int wait_for(int fd, short events, int64_t deadline) {
  for (;;) {
    int64_t left = deadline - now_ms();
    if (left <= 0) return 0;
    struct pollfd p = {.fd = fd, .events = events};
    int r = poll(&p, 1, left > INT_MAX ? INT_MAX : (int)left);
    if (r > 0) return 1;
    if (r < 0 && errno != EINTR) return 1; /* the read or write that follows reports it */
  }
}

static const char *errno_words(int e) {
  switch (e) {
    case ENOENT: return "no socket";
    case ECONNREFUSED: return "connection refused";
    default: return NULL;
  }
}

/* Connects without blocking past accept_by: a stopped agent's full backlog makes connect wait. */
static int connect_by(const char *path, int64_t accept_by, struct buf *reason) {
  struct sockaddr_un a = {.sun_family = AF_UNIX};
  if (strlen(path) >= sizeof a.sun_path) {
    buf_printf(reason, "agent at \"%s\": the path is longer than a unix socket's (%zu bytes)", path, sizeof a.sun_path - 1);
    return -1;
  }
  memcpy(a.sun_path, path, strlen(path) + 1);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) {
    buf_printf(reason, "agent at \"%s\": %s", path, strerror(errno));
    return -1;
  }
  for (;;) {
    if (connect(fd, (struct sockaddr *)&a, sizeof a) == 0) return fd;
    int e = errno;
    if (e == EINTR) continue;
    if (e == EAGAIN && now_ms() < accept_by) {
      struct timespec ts = {0, 5 * 1000000L};
      nanosleep(&ts, NULL);
      continue;
    }
    if (e == EAGAIN) buf_printf(reason, "agent at \"%s\" did not accept within %d ms", path, ACCEPT_BUDGET_MS);
    else if (errno_words(e)) buf_printf(reason, "agent at \"%s\": %s", path, errno_words(e));
    else buf_printf(reason, "agent at \"%s\": %s (%s)", path, strerror(e), strerrorname_np(e) ? strerrorname_np(e) : "?");
    close(fd);
    return -1;
  }
}

/* Sends the request to the agent and waits for "accepted" (ACCEPT_BUDGET_MS), then for its answer (until the
 * invocation's budget from started_at has run out, plus ANSWER_SLACK_MS). 1: served, `answer` holds it;
 * 0: not served, `reason` says why. */
static int forward(const char *path, int64_t budget_ms, int64_t started_at, const struct buf *in, struct reply *answer,
                   struct buf *reason) {
  int64_t accept_by = now_ms() + ACCEPT_BUDGET_MS;
  struct buf line = {0};
  if (!request_line(&line, in, started_at, accept_by)) {
    buf_puts(reason, "the request holds bytes that are not UTF-8 text, which the agent's protocol carries");
    return 0;
  }
  int fd = connect_by(path, accept_by, reason);
  if (fd < 0) return 0;
  int accepted = 0;
  for (size_t off = 0; off < line.len;) {
    ssize_t n = send(fd, line.p + off, line.len - off, MSG_NOSIGNAL);
    if (n > 0) {
      off += (size_t)n;
    } else if (n < 0 && errno == EINTR) {
    } else if (n < 0 && errno == EAGAIN) {
      if (!wait_for(fd, POLLOUT, accept_by)) {
        buf_printf(reason, "agent at \"%s\" did not accept within %d ms", path, ACCEPT_BUDGET_MS);
        goto fail;
      }
    } else {
      buf_printf(reason, "agent at \"%s\" closed the connection without accepting", path);
      goto fail;
    }
  }
  failpoint("plugin.forwarded");

  struct buf got = {0}, key = {0};
  int64_t deadline = accept_by;
  for (;;) {
    char *nl;
    while ((nl = got.len ? memchr(got.p, '\n', got.len) : NULL)) {
      decode_reply(got.p, (size_t)(nl - got.p), answer, &key);
      size_t used = (size_t)(nl - got.p) + 1;
      memmove(got.p, nl + 1, got.len - used);
      got.len -= used;
      switch (answer->kind) {
        case REPLY_INVALID:
          buf_printf(reason, "agent at \"%s\" sent a message that is not the protocol", path);
          goto fail;
        case REPLY_REFUSED:
          buf_printf(reason, "agent at \"%s\" refused: %s", path, answer->text.p);
          goto fail;
        case REPLY_ACCEPTED: {
          accepted = 1;
          int64_t end = started_at + budget_ms, now = now_ms();
          deadline = (end > now ? end : now) + ANSWER_SLACK_MS;
          break;
        }
        case REPLY_ANSWER:
          close(fd);
          return 1;
      }
    }
    if (!wait_for(fd, POLLIN, deadline)) {
      if (accepted) buf_printf(reason, "the node agent at \"%s\" accepted the request but did not answer", path);
      else buf_printf(reason, "agent at \"%s\" did not accept within %d ms", path, ACCEPT_BUDGET_MS);
      goto fail;
    }
    char chunk[65536];
    ssize_t n = read(fd, chunk, sizeof chunk);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n <= 0) {
      buf_printf(reason, "agent at \"%s\" closed the connection %s", path, accepted ? "before answering" : "without accepting");
      goto fail;
    }
    buf_put(&got, chunk, (size_t)n);
    if (got.len > MAX_REPLY_BYTES) {
      buf_printf(reason, "agent at \"%s\" sent a message that is not the protocol", path);
      goto fail;
    }
  }
fail:
  close(fd);
  return 0;
}

static int write_all(int fd, const char *s, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, s, n);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0 && errno == EAGAIN) {
      struct pollfd p = {.fd = fd, .events = POLLOUT};
      poll(&p, 1, -1);
      continue;
    }
    if (w <= 0) return -1;
    s += w;
    n -= (size_t)w;
  }
  return 0;
}

int main(int argc, char **argv) {
  (void)argc;
  int64_t started_at = now_ms(); /* ipam.timeoutSeconds counts from here, whoever runs the request */
  const char *command = getenv("CNI_COMMAND");
  if (!command) run_core(argv, NULL, NULL, 0); /* the CLI */
  if (!in_list(forwarded_verbs, command)) run_core(argv, NULL, NULL, started_at); /* VERSION, or the core's error */

  struct buf in = {0};
  int r = read_stdin(&in);
  /* A failed read with nothing read leaves stdin as it was, for the core to meet the same failure and word it. */
  if (r < 0 && in.len == 0) run_core(argv, NULL, NULL, started_at);
  struct buf socket = {0};
  int64_t budget_ms;
  if (r != 0 || !target_for(&in, &socket, &budget_ms)) run_core(argv, &in, NULL, started_at);

  struct reply answer = {0};
  struct buf reason = {0};
  if (!forward(socket.p, budget_ms, started_at, &in, &answer, &reason)) run_core(argv, &in, reason.p, started_at);
  if (answer.text.len) {
    buf_putc(&answer.text, '\n');
    if (write_all(1, answer.text.p, answer.text.len)) return 1;
  }
  return answer.exit_code;
}
