#pragma once
#include <napi.h>

Napi::Value OpenAppendAs(const Napi::CallbackInfo& info);
