// The addon's entry point: one exported function per system call we need.
#include <malloc.h>
#include <napi.h>
#include <sched.h>
#include <sys/resource.h>

#include "errno-error.h"
#include "listen-socket.h"
#include "open-as.h"
#include "peercred.h"
#include "remove-tree.h"
#include "users.h"

// Gives the C heap's free memory back to the system (malloc_trim(3)).
static Napi::Value TrimMemory(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), malloc_trim(0) != 0);
}

// Gives the calling thread (alone: Linux keeps a nice value per thread) the
// nice value `nice`, and the reset-on-fork flag first, so that the processes
// and threads it starts begin at nice 0, not at its own (sched(7)).
static Napi::Value SetThreadNice(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 1 || !info[0].IsNumber()) {
    Napi::TypeError::New(env, "setThreadNice(nice)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  struct sched_param param = {};
  if (sched_setscheduler(0, SCHED_OTHER | SCHED_RESET_ON_FORK, &param) != 0) {
    ErrnoError(env, errno, "sched_setscheduler").ThrowAsJavaScriptException();
  } else if (setpriority(PRIO_PROCESS, 0, info[0].As<Napi::Number>().Int32Value()) != 0) {
    ErrnoError(env, errno, "setpriority").ThrowAsJavaScriptException();
  }
  return env.Undefined();
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("getPeerCredentials", Napi::Function::New(env, GetPeerCredentials, "getPeerCredentials"));
  exports.Set("listenTcp", Napi::Function::New(env, ListenTcp, "listenTcp"));
  exports.Set("listenUnix", Napi::Function::New(env, ListenUnix, "listenUnix"));
  exports.Set("openAppendAs", Napi::Function::New(env, OpenAppendAs, "openAppendAs"));
  exports.Set("removeTree", Napi::Function::New(env, RemoveTree, "removeTree"));
  exports.Set("lookupUser", Napi::Function::New(env, LookupUser, "lookupUser"));
  exports.Set("lookupGroup", Napi::Function::New(env, LookupGroup, "lookupGroup"));
  exports.Set("trimMemory", Napi::Function::New(env, TrimMemory, "trimMemory"));
  exports.Set("setThreadNice", Napi::Function::New(env, SetThreadNice, "setThreadNice"));
  exports.Set("setCloexec", Napi::Function::New(env, SetCloexec, "setCloexec"));
  return exports;
}

NODE_API_MODULE(passenger_native, Init)
