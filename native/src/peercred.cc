#include "peercred.h"

#include "errno-error.h"

#include <cerrno>
#include <cstring>
#include <sys/socket.h>
#include <sys/types.h>


Napi::Value GetPeerCredentials(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 1 || !info[0].IsNumber()) {
    Napi::TypeError::New(env, "getPeerCredentials(fd): fd must be a number").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  int fd = info[0].As<Napi::Number>().Int32Value();
  if (fd < 0) {
    Napi::TypeError::New(env, "getPeerCredentials(fd): fd must not be negative").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  struct ucred cred;
  socklen_t len = sizeof(cred);
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
    int err = errno;  // captured before anything else can change it
    ErrnoError(env, err, "getsockopt").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("pid", Napi::Number::New(env, cred.pid));
  out.Set("uid", Napi::Number::New(env, cred.uid));
  out.Set("gid", Napi::Number::New(env, cred.gid));
  return out;
}
