// links.* entry points.
#include "../kernel/links.h"

#include "addon.h"
#include "convert.h"

namespace nodenet {

namespace {

class ListLinksJob : public Job {
 public:
  using Job::Job;

 protected:
  void Execute() override { links_ = ListLinks(); }

  Napi::Value Result(Napi::Env env) override {
    Napi::Array out = Napi::Array::New(env, links_.size());
    for (size_t i = 0; i < links_.size(); ++i) {
      const LinkInfo& l = links_[i];
      Napi::Object o = Napi::Object::New(env);
      o.Set("index", l.index);
      o.Set("name", l.name);
      o.Set("kind", l.kind);
      o.Set("slaveKind", l.slave_kind);
      o.Set("mtu", l.mtu);
      o.Set("flags", l.flags);
      o.Set("operstate", l.operstate);
      o.Set("txqlen", l.txqlen);
      o.Set("masterIndex", l.master_index);
      o.Set("linkIndex", l.link_index);
      o.Set("linkNetnsId", l.link_netnsid);
      o.Set("alias", l.alias);
      o.Set("address", l.address);
      out.Set(i, o);
    }
    return out;
  }

 private:
  std::vector<LinkInfo> links_;
};

// listLinks(netns?: string): Promise<RawLink[]>
Napi::Value ListLinksBinding(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string netns = NetnsArgument(info, 0, "listLinks");
  return PoolOf(env).Submit(env, std::make_unique<ListLinksJob>(env, "links.list", netns));
}

}  // namespace

void RegisterLinks(Napi::Env env, Napi::Object exports) {
  exports.Set("listLinks", Napi::Function::New(env, ListLinksBinding, "listLinks"));
}

}  // namespace nodenet
