#include "users.h"

#include "errno-error.h"

#include <cerrno>
#include <grp.h>
#include <pwd.h>
#include <string>
#include <sys/types.h>
#include <unistd.h>
#include <vector>

namespace {

// The *_r calls say "not found" in several ways (0 with a null result, or
// ENOENT, ESRCH, EBADF, EPERM on some NSS modules); only other errors are errors.
bool IsNotFound(int ret) {
  return ret == 0 || ret == ENOENT || ret == ESRCH || ret == EBADF || ret == EPERM;
}

size_t InitialBufferSize(int which) {
  long n = sysconf(which);
  return n > 0 ? static_cast<size_t>(n) : 16384;
}

// A name, or a whole number standing for an id; anything else is a TypeError.
bool ReadKey(const Napi::CallbackInfo& info, const char* usage, std::string* name, long long* id) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !(info[0].IsString() || info[0].IsNumber())) {
    Napi::TypeError::New(env, usage).ThrowAsJavaScriptException();
    return false;
  }
  if (info[0].IsNumber()) {
    double d = info[0].As<Napi::Number>().DoubleValue();
    if (d < 0 || d > 4294967294.0 || d != static_cast<double>(static_cast<long long>(d))) {
      Napi::TypeError::New(env, std::string(usage) + ": an id must be a whole number from 0 to 4294967294").ThrowAsJavaScriptException();
      return false;
    }
    *id = static_cast<long long>(d);
    return true;
  }
  *name = info[0].As<Napi::String>().Utf8Value();
  if (name->empty() || name->find('\0') != std::string::npos) {
    Napi::TypeError::New(env, std::string(usage) + ": a name must be non-empty").ThrowAsJavaScriptException();
    return false;
  }
  *id = -1;
  return true;
}

}  // namespace

Napi::Value LookupUser(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name;
  long long id = -1;
  if (!ReadKey(info, "lookupUser(nameOrUid[, gid])", &name, &id)) return env.Undefined();
  // The group the supplementary list starts from: the user's own unless the
  // app runs with another one (as initgroups(name, gid) would be called).
  long long base = -1;
  if (info.Length() > 1 && !info[1].IsUndefined()) {
    double d = info[1].IsNumber() ? info[1].As<Napi::Number>().DoubleValue() : -1;
    if (d < 0 || d > 4294967294.0 || d != static_cast<double>(static_cast<long long>(d))) {
      Napi::TypeError::New(env, "lookupUser(nameOrUid[, gid]): gid must be a whole number from 0 to 4294967294").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    base = static_cast<long long>(d);
  }

  std::vector<char> buf(InitialBufferSize(_SC_GETPW_R_SIZE_MAX));
  struct passwd pw;
  struct passwd* found = nullptr;
  int ret;
  for (;;) {
    ret = id >= 0 ? getpwuid_r(static_cast<uid_t>(id), &pw, buf.data(), buf.size(), &found)
                  : getpwnam_r(name.c_str(), &pw, buf.data(), buf.size(), &found);
    if (ret != ERANGE || buf.size() >= (1u << 24)) break;
    buf.resize(buf.size() * 2);
  }
  if (found == nullptr) {
    if (IsNotFound(ret)) return env.Null();
    ErrnoError(env, ret, id >= 0 ? "getpwuid_r" : "getpwnam_r").ThrowAsJavaScriptException();
    return env.Undefined();
  }

  // The groups initgroups() would give this user: the base group first.
  gid_t base_gid = base >= 0 ? static_cast<gid_t>(base) : pw.pw_gid;
  std::vector<gid_t> groups(32);
  for (;;) {
    int n = static_cast<int>(groups.size());
    if (getgrouplist(pw.pw_name, base_gid, groups.data(), &n) >= 0) {
      groups.resize(n);
      break;
    }
    if (n <= static_cast<int>(groups.size()) || n > 65536) {
      ErrnoError(env, EIO, "getgrouplist").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    groups.resize(n);
  }

  Napi::Object out = Napi::Object::New(env);
  out.Set("name", Napi::String::New(env, pw.pw_name));
  out.Set("uid", Napi::Number::New(env, pw.pw_uid));
  out.Set("gid", Napi::Number::New(env, pw.pw_gid));
  out.Set("home", Napi::String::New(env, pw.pw_dir ? pw.pw_dir : ""));
  out.Set("shell", Napi::String::New(env, pw.pw_shell ? pw.pw_shell : ""));
  Napi::Array list = Napi::Array::New(env, groups.size());
  for (size_t i = 0; i < groups.size(); i++) list.Set(static_cast<uint32_t>(i), Napi::Number::New(env, groups[i]));
  out.Set("groups", list);
  return out;
}

Napi::Value LookupGroup(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name;
  long long id = -1;
  if (!ReadKey(info, "lookupGroup(nameOrGid)", &name, &id)) return env.Undefined();

  std::vector<char> buf(InitialBufferSize(_SC_GETGR_R_SIZE_MAX));
  struct group gr;
  struct group* found = nullptr;
  int ret;
  for (;;) {
    ret = id >= 0 ? getgrgid_r(static_cast<gid_t>(id), &gr, buf.data(), buf.size(), &found)
                  : getgrnam_r(name.c_str(), &gr, buf.data(), buf.size(), &found);
    if (ret != ERANGE || buf.size() >= (1u << 24)) break;
    buf.resize(buf.size() * 2);
  }
  if (found == nullptr) {
    if (IsNotFound(ret)) return env.Null();
    ErrnoError(env, ret, id >= 0 ? "getgrgid_r" : "getgrnam_r").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("name", Napi::String::New(env, gr.gr_name));
  out.Set("gid", Napi::Number::New(env, gr.gr_gid));
  return out;
}
