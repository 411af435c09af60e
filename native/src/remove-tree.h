#pragma once
#include <napi.h>

Napi::Value RemoveTree(const Napi::CallbackInfo& info);
