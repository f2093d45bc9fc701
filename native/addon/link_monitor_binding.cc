// watchLinks: link notifications delivered to a JS callback.
//
// Unlike every other entry point this is not a job on the worker pool: the monitor has a reader
// thread of its own, which blocks in poll() for as long as the watch is open. Events reach the JS
// thread through one thread-safe function per watch; the reader only wakes it (the queue lives in
// the LinkMonitor, bounded), so a slow JS thread costs an overflow event, not unbounded memory.
#include "../kernel/link_monitor.h"

#include <memory>

#include "addon.h"
#include "convert.h"

namespace nodenet {

namespace {

constexpr const char* kOp = "linkMonitor.watch";

struct Watch;
void CallJs(Napi::Env env, Napi::Function callback, Watch* watch, void*);
using Wake = Napi::TypedThreadSafeFunction<Watch, void, &CallJs>;

// Shared by the handle's methods and the thread-safe function's finalizer: either may outlive the
// other (a handle dropped without close(), an environment torn down with a watch open).
struct Watch {
  std::string netns;
  std::unique_ptr<LinkMonitor> monitor;
  Wake wake;
  // JS thread only.
  bool closed = false;
  bool released = false;  // wake was released or finalized: no call on it is allowed any more

  // JS thread. Stops the reader before releasing the function, so nothing calls it afterwards.
  void Close() {
    if (closed) return;
    closed = true;
    if (monitor) monitor->Stop();
    if (!released) {
      released = true;
      wake.Release();
    }
  }
};

Napi::Value EventToJs(Napi::Env env, const LinkEvent& e) {
  Napi::Object o = Napi::Object::New(env);
  switch (e.type) {
    case LinkEvent::Type::kOverflow:
      o.Set("type", "overflow");
      return o;
    case LinkEvent::Type::kNew: o.Set("type", "new"); break;
    case LinkEvent::Type::kDel: o.Set("type", "del"); break;
  }
  o.Set("index", e.index);
  o.Set("name", e.name);
  o.Set("kind", e.kind);
  o.Set("flags", e.flags);
  o.Set("linkIndex", e.link_index);
  o.Set("linkNetnsId", e.link_netnsid);
  o.Set("master", e.master);
  return o;
}

void CallJs(Napi::Env env, Napi::Function callback, Watch* watch, void*) {
  if (env == nullptr || watch->closed) return;  // torn down, or a wake-up that raced close()
  LinkMonitor::Pending pending = watch->monitor->Drain();
  if (pending.events.empty() && !pending.error) return;
  Napi::Array events = Napi::Array::New(env, pending.events.size());
  for (size_t i = 0; i < pending.events.size(); ++i) events.Set(static_cast<uint32_t>(i), EventToJs(env, pending.events[i]));
  Napi::Value error = env.Null();
  if (pending.error) {
    pending.error->set_op(kOp);
    pending.error->set_netns(watch->netns);
    error = ToJsError(env, *pending.error).Value();
    // The reader has ended; let the process exit even if JS never calls close().
    watch->Close();
  }
  callback.Call({events, error});
}

// watchLinks(netns: string | undefined, callback: (events, error) => void): { close, ref, unref }
Napi::Value WatchLinksBinding(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string netns = NetnsArgument(info, 0, "watchLinks");
  if (info.Length() < 2 || !info[1].IsFunction()) throw Napi::TypeError::New(env, "watchLinks: callback must be a function");

  auto watch = std::make_shared<Watch>();
  watch->netns = netns;
  // The finalizer's copy keeps the context alive for as long as the function can call it.
  auto* keep = new std::shared_ptr<Watch>(watch);
  watch->wake = Wake::New(
      env, info[1].As<Napi::Function>(), "nodenet-link-monitor", 0, 1, watch.get(),
      [](Napi::Env, std::shared_ptr<Watch>* kept, Watch*) {
        Watch& w = **kept;
        // Environment teardown with the watch still open: the reader must stop before the
        // function it wakes is gone.
        w.closed = true;
        w.released = true;
        if (w.monitor) w.monitor->Stop();
        delete kept;
      },
      keep);

  try {
    Wake wake = watch->wake;
    watch->monitor = std::make_unique<LinkMonitor>(netns, [wake] {
      // Fails only once the function is closing, when nobody wants the events.
      wake.NonBlockingCall();
    });
  } catch (KernelError& e) {
    watch->Close();
    e.set_op(kOp);
    e.set_netns(netns);
    throw ToJsError(env, e);
  } catch (const std::exception& e) {
    // bad_alloc and the like: node-addon-api lets only Napi::Error cross into JS.
    watch->Close();
    throw Napi::Error::New(env, std::string("watchLinks: ") + e.what());
  }

  Napi::Object handle = Napi::Object::New(env);
  handle.Set("close", Napi::Function::New(env, [watch](const Napi::CallbackInfo& info) {
    watch->Close();
    return info.Env().Undefined();
  }, "close"));
  // The open watch holds the event loop open, like a listening socket; unref() lets the process
  // exit while it is still open.
  handle.Set("ref", Napi::Function::New(env, [watch](const Napi::CallbackInfo& info) {
    if (!watch->released) watch->wake.Ref(info.Env());
    return info.Env().Undefined();
  }, "ref"));
  handle.Set("unref", Napi::Function::New(env, [watch](const Napi::CallbackInfo& info) {
    if (!watch->released) watch->wake.Unref(info.Env());
    return info.Env().Undefined();
  }, "unref"));
  return handle;
}

}  // namespace

void RegisterLinkMonitor(Napi::Env env, Napi::Object exports) {
  exports.Set("watchLinks", Napi::Function::New(env, WatchLinksBinding, "watchLinks"));
}

}  // namespace nodenet
