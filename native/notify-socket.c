#define _GNU_SOURCE
#include <errno.h>
#include <node_api.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <uv.h>

/* listen(path, onMessage) → handle; close(handle)
 *
 * A unix datagram socket bound at `path`, as systemd's NOTIFY_SOCKET: a service sends
 * "READY=1\nSTATUS=…" with sd_notify(3) or systemd-notify(1). Node has no unix datagram
 * sockets (dgram is UDP only), hence these few lines. Each datagram received is handed to
 * onMessage as a Buffer. The poll handle is unreferenced: a socket nobody wrote to must not
 * keep the runtime alive. */

#define MAX_DATAGRAM 4096

struct notify_socket {
  uv_poll_t poll;
  int fd;
  int closed;
  napi_env env;
  napi_ref callback;
  napi_async_context async;
};

static void free_socket(uv_handle_t *handle) {
  free(handle->data);
}

static void shut(struct notify_socket *s) {
  if (s->closed) return;
  s->closed = 1;
  uv_poll_stop(&s->poll);
  close(s->fd);
  napi_delete_reference(s->env, s->callback);
  napi_async_destroy(s->env, s->async);
  uv_close((uv_handle_t *)&s->poll, free_socket);
}

static void on_readable(uv_poll_t *handle, int status, int events) {
  (void)status;
  (void)events;
  struct notify_socket *s = handle->data;
  char buffer[MAX_DATAGRAM];
  for (;;) {
    ssize_t n = recv(s->fd, buffer, sizeof buffer, MSG_DONTWAIT);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return; /* EAGAIN: all read */
    napi_env env = s->env;
    napi_handle_scope scope;
    napi_open_handle_scope(env, &scope);
    napi_value argv[1], callback, recv_this;
    void *data;
    napi_create_buffer_copy(env, (size_t)n, buffer, &data, &argv[0]);
    napi_get_reference_value(env, s->callback, &callback);
    napi_get_global(env, &recv_this);
    if (napi_make_callback(env, s->async, recv_this, callback, 1, argv, NULL) == napi_pending_exception) {
      napi_value error;
      napi_get_and_clear_last_exception(env, &error);
      napi_fatal_exception(env, error);
    }
    napi_close_handle_scope(env, scope);
    if (s->closed) return; /* the callback closed it */
  }
}

static napi_value throw_errno(napi_env env, const char *what, int err) {
  char message[256];
  snprintf(message, sizeof message, "%s: %s", what, strerror(err));
  napi_throw_error(env, NULL, message);
  return NULL;
}

static napi_value listen_socket(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  struct sockaddr_un address;
  memset(&address, 0, sizeof address);
  address.sun_family = AF_UNIX;
  size_t length = 0;
  if (argc < 2 || napi_get_value_string_utf8(env, argv[0], address.sun_path, sizeof address.sun_path, &length) != napi_ok) {
    napi_throw_type_error(env, NULL, "listen(path, onMessage)");
    return NULL;
  }
  if (length >= sizeof address.sun_path - 1) {
    napi_throw_range_error(env, NULL, "notify socket path too long (at most 107 bytes)");
    return NULL;
  }
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return throw_errno(env, "socket", errno);
  if (bind(fd, (struct sockaddr *)&address, sizeof address) != 0) {
    int err = errno;
    close(fd);
    return throw_errno(env, "bind", err);
  }
  uv_loop_t *loop;
  napi_get_uv_event_loop(env, &loop);
  struct notify_socket *s = calloc(1, sizeof *s);
  if (!s) {
    close(fd);
    return throw_errno(env, "calloc", ENOMEM);
  }
  s->fd = fd;
  s->env = env;
  if (uv_poll_init(loop, &s->poll, fd) != 0) {
    close(fd);
    free(s);
    return throw_errno(env, "uv_poll_init", EINVAL);
  }
  s->poll.data = s;
  napi_value name;
  napi_create_string_utf8(env, "shuma:notify-socket", NAPI_AUTO_LENGTH, &name);
  napi_create_reference(env, argv[1], 1, &s->callback);
  napi_async_init(env, NULL, name, &s->async);
  uv_unref((uv_handle_t *)&s->poll);
  uv_poll_start(&s->poll, UV_READABLE, on_readable);
  napi_value handle;
  napi_create_external(env, s, NULL, NULL, &handle);
  return handle;
}

static napi_value close_socket(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  struct notify_socket *s = NULL;
  if (argc < 1 || napi_get_value_external(env, argv[0], (void **)&s) != napi_ok || !s) {
    napi_throw_type_error(env, NULL, "close(handle)");
    return NULL;
  }
  shut(s);
  return NULL;
}

NAPI_MODULE_INIT() {
  napi_property_descriptor properties[] = {
      {"listen", NULL, listen_socket, NULL, NULL, NULL, napi_default, NULL},
      {"close", NULL, close_socket, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof properties / sizeof properties[0], properties);
  return exports;
}
