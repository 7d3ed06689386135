// tessera peer credentials: a small N-API addon for the agent's peer tracker.
//
// Node exposes no peer credentials for Unix sockets, so this reads them from the kernel:
//   getPeerCred(fd)      -> { pid, uid, gid }   getsockopt(SO_PEERCRED)
//   getPeerPidfd(fd)     -> pidfd (>= 0) or -1  getsockopt(SO_PEERPIDFD) (Linux >= 6.5), else
//                                               pidfd_open(pid) right after SO_PEERCRED (Linux >= 5.3)
//   pidfdOpen(pid)       -> pidfd (>= 0) or -1  pidfd_open(pid) (-1 when the kernel lacks it)
//   pidfdIsAlive(pidfd)  -> boolean             poll(POLLIN): a pidfd becomes readable when the process exits
//   closeFd(fd)          -> undefined           close(2)
//
// Failures are thrown as JS errors whose `code` is the errno name (e.g. "ESRCH", "EBADF") and whose message is
// "peercred: <call> failed: <strerror>".
//
// Residual race of the pidfd_open fallback: SO_PEERCRED reports the PID of the process that called connect().
// If that process exits and its PID is reused by a new process between connect() and pidfd_open(), the pidfd
// refers to the new process. SO_PEERPIDFD, when the kernel has it, closes that race because the kernel pins the
// peer's struct pid at connect() time. The window of the fallback is the time between the peer's connect() and
// our accept handler (usually microseconds), and a PID must be recycled through the whole PID space inside it.
//
// Only the N-API C interface is used (no nan, no V8 headers), so the binary is ABI-stable across Node versions.

#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define NAPI_VERSION 8
#include <node_api.h>

#ifdef __linux__
#include <poll.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/types.h>

// SO_PEERPIDFD arrived in Linux 6.5; older libc headers do not define it. Its value is 77 in
// asm-generic/socket.h (x86, arm, arm64, riscv, ...); parisc and sparc use other values, and there we rely on
// the pidfd_open fallback only.
#ifndef SO_PEERPIDFD
#if !defined(__hppa__) && !defined(__sparc__)
#define SO_PEERPIDFD 77
#endif
#endif

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#endif

static const char *errno_name(int err) {
  switch (err) {
    case EBADF: return "EBADF";
    case ENOTSOCK: return "ENOTSOCK";
    case ENOPROTOOPT: return "ENOPROTOOPT";
    case EINVAL: return "EINVAL";
    case ESRCH: return "ESRCH";
    case ENOSYS: return "ENOSYS";
    case EMFILE: return "EMFILE";
    case ENFILE: return "ENFILE";
    case ENOMEM: return "ENOMEM";
    case EPERM: return "EPERM";
    case EFAULT: return "EFAULT";
    case EINTR: return "EINTR";
    case ENOTCONN: return "ENOTCONN";
    case EOPNOTSUPP: return "EOPNOTSUPP";
    default: return "EUNKNOWN";
  }
}

static napi_value throw_errno(napi_env env, const char *call, int err) {
  char message[160];
  snprintf(message, sizeof message, "peercred: %s failed: %s", call, strerror(err));
  napi_throw_error(env, errno_name(err), message);
  return NULL;
}

static napi_value throw_type(napi_env env, const char *message) {
  napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", message);
  return NULL;
}

// Reads argument 0 as a non-negative int32 file descriptor; returns -1 after throwing a TypeError.
static int fd_arg(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return -1;
  if (argc < 1) {
    throw_type(env, "peercred: a file descriptor is required");
    return -1;
  }
  napi_valuetype type;
  if (napi_typeof(env, argv[0], &type) != napi_ok || type != napi_number) {
    throw_type(env, "peercred: the file descriptor must be a number");
    return -1;
  }
  double value;
  napi_get_value_double(env, argv[0], &value);
  if (!(value >= 0 && value <= 2147483647.0) || value != (double)(int)value) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "peercred: the file descriptor must be a non-negative integer");
    return -1;
  }
  return (int)value;
}

static napi_status set_uint(napi_env env, napi_value obj, const char *name, unsigned int v) {
  napi_value n;
  napi_status s = napi_create_uint32(env, v, &n);
  if (s != napi_ok) return s;
  return napi_set_named_property(env, obj, name, n);
}

static napi_value get_peer_cred(napi_env env, napi_callback_info info) {
  int fd = fd_arg(env, info);
  if (fd < 0) return NULL;
#ifdef __linux__
  struct ucred cred;
  socklen_t len = sizeof cred;
  memset(&cred, 0, sizeof cred);
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) return throw_errno(env, "getsockopt(SO_PEERCRED)", errno);
  if (len != sizeof cred) return throw_errno(env, "getsockopt(SO_PEERCRED)", EINVAL);
  napi_value obj;
  napi_create_object(env, &obj);
  set_uint(env, obj, "pid", (unsigned int)cred.pid);
  set_uint(env, obj, "uid", (unsigned int)cred.uid);
  set_uint(env, obj, "gid", (unsigned int)cred.gid);
  return obj;
#else
  return throw_errno(env, "getsockopt(SO_PEERCRED)", ENOSYS);
#endif
}

static napi_value make_int(napi_env env, int v) {
  napi_value n;
  napi_create_int32(env, v, &n);
  return n;
}

#ifdef __linux__
// pidfd_open(pid, 0) through syscall(2) (glibc < 2.36 has no wrapper): the pidfd, -1 when the kernel has no
// pidfd_open (ENOSYS), or a thrown error (ESRCH when the process does not exist).
static napi_value open_pidfd(napi_env env, pid_t pid) {
  long pidfd = syscall(SYS_pidfd_open, pid, 0);
  if (pidfd < 0) {
    int err = errno;
    if (err == ENOSYS) return make_int(env, -1);
    return throw_errno(env, "pidfd_open", err);
  }
  return make_int(env, (int)pidfd);
}
#endif

// Returns a pidfd for the peer of the connected Unix socket `fd`, or -1 when the kernel supports neither
// SO_PEERPIDFD nor pidfd_open. Throws ESRCH when the peer process is already gone.
static napi_value get_peer_pidfd(napi_env env, napi_callback_info info) {
  int fd = fd_arg(env, info);
  if (fd < 0) return NULL;
#ifdef __linux__
#ifdef SO_PEERPIDFD
  {
    int pidfd = -1;
    socklen_t len = sizeof pidfd;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERPIDFD, &pidfd, &len) == 0 && len == sizeof pidfd && pidfd >= 0) {
      return make_int(env, pidfd);
    }
    int err = errno;
    // ENOPROTOOPT/EINVAL: this kernel does not know SO_PEERPIDFD; fall back to pidfd_open below.
    if (err != ENOPROTOOPT && err != EINVAL) return throw_errno(env, "getsockopt(SO_PEERPIDFD)", err);
  }
#endif
  struct ucred cred;
  socklen_t clen = sizeof cred;
  memset(&cred, 0, sizeof cred);
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) != 0) return throw_errno(env, "getsockopt(SO_PEERCRED)", errno);
  // pid 0: the peer is in a PID namespace we cannot see; there is no process to pin.
  if (cred.pid <= 0) return throw_errno(env, "getsockopt(SO_PEERCRED)", ESRCH);
  return open_pidfd(env, cred.pid);
#else
  return make_int(env, -1);
#endif
}

// Opens a pidfd for `pid` (the fallback used by getPeerPidfd); returns -1 when the kernel has no pidfd_open.
static napi_value pidfd_open_js(napi_env env, napi_callback_info info) {
  int pid = fd_arg(env, info);
  if (pid < 0) return NULL;
#ifdef __linux__
  if (pid == 0) return throw_errno(env, "pidfd_open", ESRCH);
  return open_pidfd(env, pid);
#else
  return make_int(env, -1);
#endif
}

static napi_value pidfd_is_alive(napi_env env, napi_callback_info info) {
  int fd = fd_arg(env, info);
  if (fd < 0) return NULL;
#ifdef __linux__
  struct pollfd p = {.fd = fd, .events = POLLIN, .revents = 0};
  int r;
  do {
    r = poll(&p, 1, 0);
  } while (r < 0 && errno == EINTR);
  if (r < 0) return throw_errno(env, "poll(pidfd)", errno);
  if (p.revents & POLLNVAL) return throw_errno(env, "poll(pidfd)", EBADF);
  napi_value result;
  // POLLIN (or POLLHUP/POLLERR) means the process has exited.
  napi_get_boolean(env, r == 0 || (p.revents & (POLLIN | POLLHUP | POLLERR)) == 0, &result);
  return result;
#else
  return throw_errno(env, "poll(pidfd)", ENOSYS);
#endif
}

static napi_value close_fd(napi_env env, napi_callback_info info) {
  int fd = fd_arg(env, info);
  if (fd < 0) return NULL;
  if (close(fd) != 0 && errno != EINTR) return throw_errno(env, "close", errno);
  return NULL;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"getPeerCred", NULL, get_peer_cred, NULL, NULL, NULL, napi_enumerable, NULL},
      {"getPeerPidfd", NULL, get_peer_pidfd, NULL, NULL, NULL, napi_enumerable, NULL},
      {"pidfdOpen", NULL, pidfd_open_js, NULL, NULL, NULL, napi_enumerable, NULL},
      {"pidfdIsAlive", NULL, pidfd_is_alive, NULL, NULL, NULL, napi_enumerable, NULL},
      {"closeFd", NULL, close_fd, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
