#include "listen-socket.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <netdb.h>
#include <string>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "errno-error.h"

namespace {

bool CheckArgs(const Napi::CallbackInfo& info, const char* usage) {
  if (info.Length() != 3 || !info[0].IsString() || !info[1].IsNumber() || !info[2].IsNumber()) {
    Napi::TypeError::New(info.Env(), usage).ThrowAsJavaScriptException();
    return false;
  }
  return true;
}

}  // namespace

Napi::Value ListenTcp(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 3 || !info[0].IsString() || !info[1].IsNumber() || !info[2].IsNumber()) {
    Napi::TypeError::New(env, "listenTcp(host, port, backlog)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  std::string host = info[0].As<Napi::String>().Utf8Value();
  std::string port = std::to_string(info[1].As<Napi::Number>().Int32Value());
  int backlog = info[2].As<Napi::Number>().Int32Value();
  struct addrinfo hints;
  std::memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICHOST;
  struct addrinfo* res = nullptr;
  int gai = getaddrinfo(host.c_str(), port.c_str(), &hints, &res);
  if (gai != 0) {
    Napi::Error e = Napi::Error::New(env, std::string("getaddrinfo: ") + gai_strerror(gai));
    e.Set("code", Napi::String::New(env, "EINVAL"));
    e.ThrowAsJavaScriptException();
    return env.Undefined();
  }
  int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    int err = errno;
    freeaddrinfo(res);
    ErrnoError(env, err, "socket").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  const char* failed = nullptr;
  if (bind(fd, res->ai_addr, res->ai_addrlen) != 0) failed = "bind";
  else if (listen(fd, backlog) != 0) failed = "listen";
  int err = errno;  // captured before freeaddrinfo and close can change it
  freeaddrinfo(res);
  if (failed != nullptr) {
    close(fd);
    ErrnoError(env, err, failed).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  return Napi::Number::New(env, fd);
}

Napi::Value ListenUnix(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!CheckArgs(info, "listenUnix(path, backlog, mode)")) return env.Undefined();
  std::string path = info[0].As<Napi::String>().Utf8Value();
  int backlog = info[1].As<Napi::Number>().Int32Value();
  int mode = info[2].As<Napi::Number>().Int32Value();
  struct sockaddr_un addr;
  std::memset(&addr, 0, sizeof addr);
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof addr.sun_path) {
    ErrnoError(env, ENAMETOOLONG, "bind").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size());
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    ErrnoError(env, errno, "socket").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  // The socket file is created with its final mode (mode < 0: the umask's):
  // a chmod by path afterwards would follow whatever link another user of a
  // shared directory put in its place meanwhile.
  mode_t old = 0;
  if (mode >= 0) old = umask(~static_cast<mode_t>(mode) & 0777);
  int bound = bind(fd, reinterpret_cast<struct sockaddr*>(&addr), sizeof addr);
  int bind_err = errno;
  if (mode >= 0) umask(old);
  if (bound != 0) {
    int err = bind_err;
    close(fd);
    ErrnoError(env, err, "bind").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  if (listen(fd, backlog) != 0) {
    int err = errno;
    close(fd);
    ErrnoError(env, err, "listen").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  return Napi::Number::New(env, fd);
}

Napi::Value SetCloexec(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 1 || !info[0].IsNumber()) {
    Napi::TypeError::New(env, "setCloexec(fd)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  int fd = info[0].As<Napi::Number>().Int32Value();
  int flags = fcntl(fd, F_GETFD);
  if (flags < 0 || fcntl(fd, F_SETFD, flags | FD_CLOEXEC) < 0) {
    ErrnoError(env, errno, "fcntl").ThrowAsJavaScriptException();
  }
  return env.Undefined();
}
