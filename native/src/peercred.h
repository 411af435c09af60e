// getPeerCredentials(fd): the pid, uid and gid of the process at the other
// end of a connected Unix socket (SO_PEERCRED).
#pragma once
#include <napi.h>

Napi::Value GetPeerCredentials(const Napi::CallbackInfo& info);
