// listenTcp(host, port, backlog) and listenUnix(path, backlog): a listening
// socket's fd, created without accepting anything (the watchdog holds it so
// connections wait in the backlog while the agent core restarts), with
// close-on-exec set. setCloexec(fd) marks an inherited fd close-on-exec.
#pragma once
#include <napi.h>

Napi::Value ListenTcp(const Napi::CallbackInfo& info);
Napi::Value ListenUnix(const Napi::CallbackInfo& info);
Napi::Value SetCloexec(const Napi::CallbackInfo& info);
