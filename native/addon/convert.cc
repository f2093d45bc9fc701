#include "convert.h"

namespace nodenet {

Napi::Error ToJsError(Napi::Env env, const KernelError& error) {
  Napi::Error js = Napi::Error::New(env, error.Message());
  Napi::Object obj = js.Value();
  obj.Set("code", ErrnoName(error.err()));
  obj.Set("errno", Napi::Number::New(env, error.err()));
  obj.Set("op", error.op());
  obj.Set("object", error.object());
  obj.Set("netns", error.netns().empty() ? env.Null() : Napi::String::New(env, error.netns()));
  obj.Set("extack", error.extack().empty() ? env.Null() : Napi::String::New(env, error.extack()));
  return js;
}

std::string OptionalStringArgument(const Napi::CallbackInfo& info, size_t i, const char* fn, const char* what) {
  if (info.Length() <= i || info[i].IsUndefined() || info[i].IsNull()) return {};
  if (!info[i].IsString()) {
    throw Napi::TypeError::New(info.Env(), std::string(fn) + ": " + what + " must be a string");
  }
  return info[i].As<Napi::String>().Utf8Value();
}

std::string StringArgument(const Napi::CallbackInfo& info, size_t i, const char* fn, const char* what) {
  if (info.Length() <= i || !info[i].IsString()) {
    throw Napi::TypeError::New(info.Env(), std::string(fn) + ": " + what + " must be a string");
  }
  return info[i].As<Napi::String>().Utf8Value();
}

Napi::Buffer<uint8_t> ToBuffer(Napi::Env env, const std::vector<uint8_t>& bytes) {
  return Napi::Buffer<uint8_t>::Copy(env, bytes.data(), bytes.size());
}

}  // namespace nodenet
