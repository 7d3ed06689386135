// tessera memory: returns the C heap's free memory to the kernel after bursts of work.
//
// glibc's malloc keeps memory freed by the program in its arenas: only a free block at the very top of the main
// heap is given back on its own. After a burst (an entry sync of tens of thousands of entries, a thousand SVIDs
// issued at once) the freed memory stays resident as free chunks between live ones, megabytes of RSS that the
// agent will not use again soon. malloc_trim(0) releases every whole free page of every arena (madvise), and
// mallinfo2() tells how much is free, so the agent can trim only when it is worth it.
//
//   freeHeapBytes()  -> number   bytes free inside malloc's arenas (mallinfo2().fordblks), -1 when unknown
//   trimHeap()       -> boolean  malloc_trim(0): whether memory was released; false when unsupported
//
// Other C libraries (musl) have neither call: both functions then report "unsupported" (-1 / false).
//
// Only the N-API C interface is used, so the binary is ABI-stable across Node versions.

#define _GNU_SOURCE
#include <stddef.h>

#define NAPI_VERSION 8
#include <node_api.h>

#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
#include <malloc.h>
#define HAVE_MALLINFO2 1
#endif

static napi_value free_heap_bytes(napi_env env, napi_callback_info info) {
  (void)info;
  double bytes = -1;
#ifdef HAVE_MALLINFO2
  struct mallinfo2 m = mallinfo2();
  bytes = (double)m.fordblks;
#endif
  napi_value result;
  napi_create_double(env, bytes, &result);
  return result;
}

static napi_value trim_heap(napi_env env, napi_callback_info info) {
  (void)info;
  int released = 0;
#ifdef HAVE_MALLINFO2
  released = malloc_trim(0);
#endif
  napi_value result;
  napi_get_boolean(env, released != 0, &result);
  return result;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"freeHeapBytes", NULL, free_heap_bytes, NULL, NULL, NULL, napi_enumerable, NULL},
      {"trimHeap", NULL, trim_heap, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
