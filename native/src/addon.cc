// The addon's entry point: one exported function per system call we need.
#include <malloc.h>
#include <napi.h>

#include "listen-socket.h"
#include "open-as.h"
#include "peercred.h"
#include "remove-tree.h"
#include "users.h"

// Gives the C heap's free memory back to the system (malloc_trim(3)).
static Napi::Value TrimMemory(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), malloc_trim(0) != 0);
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
  exports.Set("setCloexec", Napi::Function::New(env, SetCloexec, "setCloexec"));
  return exports;
}

NODE_API_MODULE(passenger_native, Init)
