/*
 * srcbind: an LD_PRELOAD library that gives the range's attack tools a loopback source address.
 *
 * hydra, sqlmap, wfuzz and siege have no option to choose the address they connect from. Linux
 * routes all of 127.0.0.0/8 to the loopback interface, so any 127.x.y.z can be bound as a source
 * without configuring it. This library wraps connect(): before an IPv4 TCP connection to a
 * 127.0.0.0/8 destination it binds the socket to one address of a pool, and appends a line
 * "<unix ms> <source> <destination port>" to a log so the range records which addresses a tool
 * really used and when. Anything else (other families, UDP, non-loopback) passes through untouched.
 *
 *   GW_SRC_POOL=127.70.1.2,127.70.1.3   the source addresses (up to 256), one picked per connection
 *   GW_SRC_LOG=/path/to/file            where the connections are recorded (optional)
 *
 * Go binaries (ffuf) make system calls directly and are not affected; the range uses nginx's
 * realip module for them instead.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_POOL 256

typedef int (*connect_fn)(int, const struct sockaddr *, socklen_t);

static int is_loopback(in_addr_t network_order) {
  return (ntohl(network_order) >> 24) == 127;
}

/* Parse the pool once per process (hydra forks its tasks after the first call or before; either works). */
static int pool_size = -1;
static struct in_addr pool[MAX_POOL];

static void load_pool(void) {
  pool_size = 0;
  const char *env = getenv("GW_SRC_POOL");
  if (env == NULL) return;
  char buf[MAX_POOL * 16 + 1];
  strncpy(buf, env, sizeof buf - 1);
  buf[sizeof buf - 1] = '\0';
  char *save = NULL;
  for (char *tok = strtok_r(buf, ",", &save); tok != NULL && pool_size < MAX_POOL;
       tok = strtok_r(NULL, ",", &save)) {
    struct in_addr a;
    if (inet_pton(AF_INET, tok, &a) == 1 && is_loopback(a.s_addr)) pool[pool_size++] = a;
  }
}

static void record(const struct in_addr *src, unsigned port) {
  const char *path = getenv("GW_SRC_LOG");
  if (path == NULL) return;
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  char ip[INET_ADDRSTRLEN];
  inet_ntop(AF_INET, src, ip, sizeof ip);
  char line[96];
  int n = snprintf(line, sizeof line, "%lld %s %u\n",
                   (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000, ip, port);
  int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return;
  /* one write() of a short line to an O_APPEND file: lines of concurrent processes never interleave */
  ssize_t w = write(fd, line, (size_t)n);
  (void)w;
  close(fd);
}

int connect(int fd, const struct sockaddr *addr, socklen_t len) {
  static connect_fn real_connect;
  if (real_connect == NULL) real_connect = (connect_fn)dlsym(RTLD_NEXT, "connect");
  if (pool_size < 0) load_pool();
  if (pool_size > 0 && addr != NULL && addr->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
    const struct sockaddr_in *dst = (const struct sockaddr_in *)addr;
    int type = 0;
    socklen_t tl = sizeof type;
    if (is_loopback(dst->sin_addr.s_addr) && getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) == 0 &&
        type == SOCK_STREAM) {
      unsigned r = 0;
      if (pool_size > 1 && getrandom(&r, sizeof r, 0) != sizeof r) r = (unsigned)getpid();
      struct sockaddr_in me;
      memset(&me, 0, sizeof me);
      me.sin_family = AF_INET;
      me.sin_addr = pool[r % (unsigned)pool_size];
      int saved = errno;
      /* a socket bound already (or a failed bind) keeps its address; connect() decides */
      if (bind(fd, (struct sockaddr *)&me, sizeof me) == 0) record(&me.sin_addr, ntohs(dst->sin_port));
      errno = saved;
    }
  }
  return real_connect(fd, addr, len);
}
