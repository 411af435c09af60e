// lookupUser(nameOrUid[, gid]) and lookupGroup(nameOrGid): the user and group
// databases as the C library sees them (getpwnam_r, getpwuid_r, getgrnam_r,
// getgrgid_r, getgrouplist), so users from a directory service (NSS) count
// too. A user's supplementary groups start from `gid` when given (as
// initgroups(name, gid) sets them). Each returns null for an entry that does not exist.
#pragma once
#include <napi.h>

Napi::Value LookupUser(const Napi::CallbackInfo& info);
Napi::Value LookupGroup(const Napi::CallbackInfo& info);
