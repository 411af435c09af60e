// An Error carrying code, errno and syscall, as Node's own system errors do.
#pragma once
#include <napi.h>

Napi::Error ErrnoError(Napi::Env env, int err, const char* syscall);
