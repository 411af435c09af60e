{
  "targets": [
    {
      "target_name": "passenger_native",
      "sources": ["src/addon.cc", "src/errno-error.cc", "src/listen-socket.cc", "src/peercred.cc", "src/open-as.cc", "src/remove-tree.cc", "src/users.cc"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS"],
      "cflags_cc": ["-std=c++17", "-Wall", "-Wextra"]
    }
  ]
}
