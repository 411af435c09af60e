// Removes a directory tree without ever following a symbolic link, even one
// swapped in while the removal runs: every directory is opened relative to its
// parent's descriptor with O_NOFOLLOW, and every entry is unlinked relative to
// the directory that holds it. Root removing a tree that another user can
// write into must never be steered into deleting files elsewhere.
#include "remove-tree.h"

#include "errno-error.h"

#include <cerrno>
#include <dirent.h>
#include <fcntl.h>
#include <string>
#include <sys/stat.h>
#include <unistd.h>

namespace {

constexpr int kMaxDepth = 64;
constexpr int kMaxPasses = 8;

int EmptyDirectory(int fd, int depth);

// Removes `name` inside `parentFd`: a directory (emptied first) or anything
// else (a file, a socket, a symlink itself). Returns 0 or an errno value.
int RemoveAt(int parentFd, const char* name, int depth) {
  if (depth > kMaxDepth) return ELOOP;
  int fd = openat(parentFd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    if (err == ENOENT) return 0;
    if (err != ENOTDIR && err != ELOOP) return err;
    // Not a directory, or a symlink: the entry itself goes.
    if (unlinkat(parentFd, name, 0) == 0 || errno == ENOENT) return 0;
    if (errno == EISDIR) return RemoveAt(parentFd, name, depth + 1);  // became a directory meanwhile
    return errno;
  }
  // Entries renamed while we list may be missed: list again (a few times) until the directory can go.
  int result = 0;
  for (int pass = 0; pass < kMaxPasses; pass++) {
    result = EmptyDirectory(fd, depth);
    if (result != 0) break;
    if (unlinkat(parentFd, name, AT_REMOVEDIR) == 0 || errno == ENOENT) {
      close(fd);
      return 0;
    }
    result = errno;
    if (result != ENOTEMPTY && result != EEXIST) break;
  }
  close(fd);
  return result;
}

// Removes everything inside the open directory `fd`. Returns 0 or an errno value.
int EmptyDirectory(int fd, int depth) {
  int listFd = dup(fd);  // closedir closes the descriptor it was given
  if (listFd < 0) return errno;
  DIR* dir = fdopendir(listFd);
  if (dir == nullptr) {
    int err = errno;
    close(listFd);
    return err;
  }
  rewinddir(dir);
  int result = 0;
  for (;;) {
    errno = 0;
    struct dirent* e = readdir(dir);
    if (e == nullptr) {
      if (errno != 0) result = errno;
      break;
    }
    std::string child = e->d_name;
    if (child == "." || child == "..") continue;
    int err;
    if (e->d_type == DT_DIR || e->d_type == DT_UNKNOWN) {
      err = RemoveAt(fd, child.c_str(), depth + 1);
    } else if (unlinkat(fd, child.c_str(), 0) == 0 || errno == ENOENT) {
      err = 0;
    } else {
      err = errno == EISDIR ? RemoveAt(fd, child.c_str(), depth + 1) : errno;
    }
    if (err != 0 && result == 0) result = err;
  }
  closedir(dir);
  return result;
}

}  // namespace

// removeTree(parent, name, ownerUid): removes parent/name, which must be a
// directory owned by ownerUid (checked on the opened directory, so a swap
// between the caller's check and this call changes nothing). `parent` is
// trusted by the caller; `name` is one path component.
Napi::Value RemoveTree(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 3 || !info[0].IsString() || !info[1].IsString() || !info[2].IsNumber()) {
    Napi::TypeError::New(env, "removeTree(parent, name, ownerUid)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  std::string parent = info[0].As<Napi::String>().Utf8Value();
  std::string name = info[1].As<Napi::String>().Utf8Value();
  uid_t owner = static_cast<uid_t>(info[2].As<Napi::Number>().Uint32Value());
  if (name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos) {
    Napi::TypeError::New(env, "removeTree: name must be one path component").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  int parentFd = open(parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (parentFd < 0) {
    int err = errno;
    ErrnoError(env, err, "open").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  int fd = openat(parentFd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    close(parentFd);
    if (err == ENOENT) return env.Undefined();
    ErrnoError(env, err, "openat").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  struct stat st;
  int err = fstat(fd, &st) != 0 ? errno : (st.st_uid != owner ? EPERM : 0);
  close(fd);
  if (err == 0) err = RemoveAt(parentFd, name.c_str(), 0);
  close(parentFd);
  if (err != 0) ErrnoError(env, err, "removeTree").ThrowAsJavaScriptException();
  return env.Undefined();
}
