{
  "targets": [
    {
      "target_name": "tessera_peercred",
      "sources": ["peercred.c"],
      "cflags": ["-std=c11", "-Wall", "-Wextra", "-Werror=implicit-function-declaration", "-O2"],
      "defines": ["NAPI_DISABLE_CPP_EXCEPTIONS"]
    },
    {
      "target_name": "tessera_memory",
      "sources": ["memory.c"],
      "cflags": ["-std=c11", "-Wall", "-Wextra", "-Werror=implicit-function-declaration", "-O2"],
      "defines": ["NAPI_DISABLE_CPP_EXCEPTIONS"]
    },
    {
      "target_name": "tessera_v8heap",
      "sources": ["v8heap.cc"],
      "cflags_cc": ["-Wall", "-Wextra", "-Wno-cast-function-type", "-O2"]
    }
  ]
}
