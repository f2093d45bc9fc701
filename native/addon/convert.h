// Conversions between JS values and the kernel layer's types, in one place.
#pragma once

#include <napi.h>

#include <cstdint>
#include <string>
#include <vector>

#include "../kernel/error.h"

namespace nodenet {

// An Error whose message says op, object, netns, errno text and extack, with each of those (and
// code/errno) as properties, so callers can branch on err.code.
Napi::Error ToJsError(Napi::Env env, const KernelError& error);

// An optional string argument at index i: undefined/null → "", a string → that string. Anything
// else throws a TypeError naming fn and what.
std::string OptionalStringArgument(const Napi::CallbackInfo& info, size_t i, const char* fn, const char* what);

// The optional netns path argument every entry point takes.
inline std::string NetnsArgument(const Napi::CallbackInfo& info, size_t i, const char* fn) {
  return OptionalStringArgument(info, i, fn, "netns");
}

// A required string argument. Throws a TypeError naming fn and what.
std::string StringArgument(const Napi::CallbackInfo& info, size_t i, const char* fn, const char* what);

Napi::Buffer<uint8_t> ToBuffer(Napi::Env env, const std::vector<uint8_t>& bytes);

}  // namespace nodenet
