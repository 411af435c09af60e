// openAppendAs(path, uid, gid): opens (creating if need be) a file for
// appending with the file-system identity of another user, so that root
// writes only where that user could: an app's own log file, named by the app
// in its Passengerfile.json, must not let it append to /etc/passwd or create
// a file in /etc/cron.d. setfsuid/setfsgid change the calling thread only,
// and leaving uid 0 drops the file capabilities (CAP_DAC_OVERRIDE and the
// like) until they are set back. The last component is never followed.
#include "open-as.h"

#include "errno-error.h"

#include <cerrno>
#include <fcntl.h>
#include <string>
#include <sys/fsuid.h>
#include <sys/stat.h>
#include <unistd.h>

Napi::Value OpenAppendAs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 3 || !info[0].IsString() || !info[1].IsNumber() || !info[2].IsNumber()) {
    Napi::TypeError::New(env, "openAppendAs(path, uid, gid)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  std::string file = info[0].As<Napi::String>().Utf8Value();
  uid_t uid = static_cast<uid_t>(info[1].As<Napi::Number>().Uint32Value());
  gid_t gid = static_cast<gid_t>(info[2].As<Napi::Number>().Uint32Value());
  uid_t oldUid = static_cast<uid_t>(setfsuid(static_cast<uid_t>(-1)));
  gid_t oldGid = static_cast<gid_t>(setfsgid(static_cast<gid_t>(-1)));
  setfsgid(gid);
  setfsuid(uid);
  bool switched = static_cast<uid_t>(setfsuid(static_cast<uid_t>(-1))) == uid && static_cast<gid_t>(setfsgid(static_cast<gid_t>(-1))) == gid;
  int fd = -1;
  int err = EPERM;
  if (switched) {
    fd = open(file.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0644);
    err = fd < 0 ? errno : 0;
  }
  setfsuid(oldUid);
  setfsgid(oldGid);
  if (fd < 0) {
    ErrnoError(env, err, "open").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    ErrnoError(env, EINVAL, "open").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  return Napi::Number::New(env, fd);
}
