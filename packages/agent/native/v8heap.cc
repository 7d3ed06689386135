// tessera v8heap: asks V8 to shrink the JavaScript heap after a burst of work.
//
// After an entry sync of thousands of entries, V8 keeps the heap it grew to: the young generation stays large
// and old-generation pages stay committed, megabytes of RSS the agent will not need until the next burst. V8's
// own memory reducer acts only after some full collections. A moderate memory-pressure notification starts an
// incremental collection in V8's "reduce memory" mode (it compacts, shrinks the young generation and returns the
// freed pages), in small steps, without a long pause.
//
//   reduceHeap()  -> undefined   Isolate::MemoryPressureNotification(kModerate) on the calling isolate
//
// This is V8's C++ API, which N-API does not offer, so the module is a classic Node addon: Node refuses to load
// it into another Node version (NODE_MODULE_VERSION check), and the agent then runs without it. Rebuild it with
// `npm rebuild @tessera/agent` after a Node upgrade.

#include <node.h>
#include <v8.h>

namespace {

void ReduceHeap(const v8::FunctionCallbackInfo<v8::Value>& args) {
  args.GetIsolate()->MemoryPressureNotification(v8::MemoryPressureLevel::kModerate);
}

}  // namespace

NODE_MODULE_INIT(/* exports, module, context */) {
  NODE_SET_METHOD(exports, "reduceHeap", ReduceHeap);
}
