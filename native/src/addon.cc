// The addon's entry point: one exported function per system call we need.
#include <napi.h>

#include "listen-socket.h"
#include "open-as.h"
#include "peercred.h"
#include "remove-tree.h"
#include "users.h"

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("getPeerCredentials", Napi::Function::New(env, GetPeerCredentials, "getPeerCredentials"));
  exports.Set("listenTcp", Napi::Function::New(env, ListenTcp, "listenTcp"));
  exports.Set("listenUnix", Napi::Function::New(env, ListenUnix, "listenUnix"));
  exports.Set("openAppendAs", Napi::Function::New(env, OpenAppendAs, "openAppendAs"));
  exports.Set("removeTree", Napi::Function::New(env, RemoveTree, "removeTree"));
  exports.Set("lookupUser", Napi::Function::New(env, LookupUser, "lookupUser"));
  exports.Set("lookupGroup", Napi::Function::New(env, LookupGroup, "lookupGroup"));
  exports.Set("setCloexec", Napi::Function::New(env, SetCloexec, "setCloexec"));
  return exports;
}

NODE_API_MODULE(passenger_native, Init)
