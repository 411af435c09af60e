// The addon's entry point: one exported function per system call we need.
#include <napi.h>

#include "peercred.h"

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("getPeerCredentials", Napi::Function::New(env, GetPeerCredentials, "getPeerCredentials"));
  return exports;
}

NODE_API_MODULE(passenger_native, Init)
